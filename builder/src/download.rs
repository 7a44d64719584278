//! ADD of remote files: downloads over http(s) into a content-addressed
//! download cache in the store's `state/downloads/`, so the step can be
//! keyed by what was downloaded and a rebuild does not fetch again.
//!
//! * With `--checksum=sha256:…` the content is known in advance: a cached
//!   copy is used without any request, and a download that does not match
//!   is an error.
//! * Without it the server is asked every build, conditionally
//!   (`If-None-Match` / `If-Modified-Since` from the previous answer), and
//!   the step's key is the digest of the content; a `304 Not Modified`
//!   costs one round trip and no transfer.
//!
//! The request itself goes through [`UrlFetcher`], which the command line
//! implements with the registry crate's HTTP client, so the builder links
//! no network stack.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use rbuild_cache::Store;
use rbuild_oci::digest::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::error::BuildError;

/// One HTTP GET for `ADD <url>`.
pub trait UrlFetcher: Send + Sync + std::fmt::Debug {
    /// Sends a GET with the extra `headers` (conditional ones); any status
    /// is an answer, only a failure to get one is an error (its message
    /// says why, e.g. "connection refused").
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpAnswer, String>;
}

/// What the server answered.
pub struct HttpAnswer {
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub body: Box<dyn Read + Send>,
}

/// A downloaded file in the cache.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub path: PathBuf,
    pub digest: Digest,
    /// `Last-Modified`, in seconds since the epoch, when the server sent one.
    pub modified: Option<i64>,
}

/// What the last answer for a URL said, for conditional requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UrlRecord {
    url: String,
    digest: Option<Digest>,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn downloads_dir(store: &Store) -> PathBuf {
    store.state_path("downloads")
}

fn content_path(store: &Store, digest: &Digest) -> PathBuf {
    downloads_dir(store).join("content").join(digest.hex())
}

fn record_path(store: &Store, url: &str) -> PathBuf {
    downloads_dir(store).join("urls").join(format!("{}.json", Digest::of(url.as_bytes()).hex()))
}

/// The file name ADD gives a URL: the last component of its path, as
/// BuildKit names it, or `__unnamed__`.
pub fn file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once('/').map_or("", |(_, p)| p);
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." => name.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Parses `sha256:<hex>`.
fn expected_digest(checksum: &str) -> Result<Digest, BuildError> {
    checksum.parse::<Digest>().map_err(|_| {
        BuildError::new(format!("invalid checksum {checksum:?}"))
            .hint("write --checksum=sha256:<64 hex digits>")
    })
}

/// A cached download whose content is known in advance, without any request.
pub fn cached(store: &Store, checksum: &str) -> Option<Downloaded> {
    let digest = expected_digest(checksum).ok()?;
    let path = content_path(store, &digest);
    path.is_file().then_some(Downloaded { path, digest, modified: None })
}

/// Fetches `url` (or takes it from the cache, see the module docs).
pub fn fetch(
    store: &Store,
    http: &dyn UrlFetcher,
    url: &str,
    checksum: Option<&str>,
) -> Result<Downloaded, BuildError> {
    if let Some(c) = checksum
        && let Some(hit) = cached(store, c)
    {
        let modified =
            read_record(store, url).and_then(|r| r.last_modified).and_then(|s| parse_http_date(&s));
        return Ok(Downloaded { modified, ..hit });
    }
    let previous = read_record(store, url)
        .filter(|r| r.url == url && r.digest.is_some_and(|d| content_path(store, &d).is_file()));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(prev) = &previous {
        if let Some(etag) = &prev.etag {
            headers.push(("If-None-Match", etag));
        }
        if let Some(lm) = &prev.last_modified {
            headers.push(("If-Modified-Since", lm));
        }
    }
    let answer = http.get(url, &headers).map_err(|e| unreachable_url(url, &e))?;
    let HttpAnswer { status, etag, last_modified, body } = answer;
    if status == 304
        && let Some(prev) = previous
        && let Some(digest) = prev.digest
    {
        let modified = prev.last_modified.as_deref().and_then(parse_http_date);
        return Ok(Downloaded { path: content_path(store, &digest), digest, modified });
    }
    if !(200..300).contains(&status) {
        return Err(unreachable_url(url, &format!("the server answered {status}")));
    }
    let (path, digest) = save_body(store, url, body, checksum)?;
    let record =
        UrlRecord { url: url.to_string(), digest: Some(digest), etag, last_modified: last_modified.clone() };
    remember(store, url, &record);
    Ok(Downloaded { path, digest, modified: last_modified.as_deref().and_then(parse_http_date) })
}

fn unreachable_url(url: &str, e: &dyn std::fmt::Display) -> BuildError {
    BuildError::new(format!("ADD {url}: {e}"))
        .hint("check the URL and that the server is reachable from this machine")
}

/// Streams a body into the download cache, hashing it on the way and
/// checking it against `checksum`; the file appears under its digest only
/// when complete and correct.
fn save_body(
    store: &Store,
    url: &str,
    mut body: Box<dyn Read + Send>,
    checksum: Option<&str>,
) -> Result<(PathBuf, Digest), BuildError> {
    let dir = downloads_dir(store).join("content");
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".partial-{}", rbuild_cache::store::unique_suffix()));
    let result = (|| -> Result<Digest, BuildError> {
        let mut out = File::create(&tmp)?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(unreachable_url(url, &e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        out.sync_all()?;
        let digest = hasher.finish();
        if let Some(c) = checksum {
            let want = expected_digest(c)?;
            if want != digest {
                return Err(BuildError::new(format!(
                    "ADD {url}: checksum mismatch: the Dockerfile expects {want}, the download is {digest}"
                ))
                .hint("update --checksum if the file changed on purpose; otherwise the download is not the file you expect"));
            }
        }
        Ok(digest)
    })();
    let digest = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let path = content_path(store, &digest);
    fs::rename(&tmp, &path)?;
    Ok((path, digest))
}

/// Keeps what the server said about `url` for the next conditional request.
/// The record only saves a transfer next time: failing to write it is harmless.
fn remember(store: &Store, url: &str, record: &UrlRecord) {
    let rec_path = record_path(store, url);
    if let Some(parent) = rec_path.parent() {
        let _ = fs::create_dir_all(parent);
    }
    if let Ok(json) = serde_json::to_vec(record) {
        let _ = rbuild_cache::store::write_file(&rec_path, &json);
    }
}

fn read_record(store: &Store, url: &str) -> Option<UrlRecord> {
    fs::read(record_path(store, url)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// RFC 7231's preferred date format: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: i64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as i64
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(file_name("https://example.com/a/b/tool.tar.gz?x=1"), "tool.tar.gz");
        assert_eq!(file_name("http://127.0.0.1:8000/"), "__unnamed__");
        assert_eq!(file_name("http://127.0.0.1:8000"), "__unnamed__");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}

//! Plain HTTP(S) downloads (`ADD <url>`) over the same client stack the
//! registry uses, so rbuild links one HTTP implementation. The body is read
//! as a blocking stream, chunk by chunk, so a large download is never held
//! in memory.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// How long connecting may take, and how long a read may wait for bytes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// An HTTP client with its own small runtime, for callers that are not async.
#[derive(Debug)]
pub struct HttpClient {
    runtime: Arc<tokio::runtime::Runtime>,
    client: reqwest::Client,
}

/// A server's answer: status, the caching headers, and the body as a reader.
pub struct HttpResponse {
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub body: HttpBody,
}

/// The body of an answer, read as it arrives.
pub struct HttpBody {
    // Fields drop in order: the response before the runtime its
    // connection's tasks live on.
    response: reqwest::Response,
    pending: Bytes,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl HttpClient {
    pub fn new() -> io::Result<HttpClient> {
        // reqwest is built without a default TLS provider (see session.rs).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rbuild-http")
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(io::Error::other)?;
        Ok(HttpClient { runtime: Arc::new(runtime), client })
    }

    /// GET `url` with extra `headers`. Any status is an answer; an error
    /// means no answer came (its chain says why).
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, reqwest::Error> {
        // Timers are made when the request is, so everything happens inside
        // the runtime.
        let response = self.runtime.block_on(async {
            let mut request = self.client.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send().await
        })?;
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(HttpResponse {
            status: response.status().as_u16(),
            etag: header("etag"),
            last_modified: header("last-modified"),
            body: HttpBody { response, pending: Bytes::new(), runtime: self.runtime.clone() },
        })
    }
}

impl Read for HttpBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            let response = &mut self.response;
            match self.runtime.block_on(async { response.chunk().await }).map_err(io::Error::other)? {
                Some(chunk) => self.pending = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        let _ = self.pending.split_to(n);
        Ok(n)
    }
}

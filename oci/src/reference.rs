//! Image references (`busybox`, `myreg:5000/team/app:v1`,
//! `ubuntu@sha256:…`): parsing with Docker's grammar, normalisation to the
//! fully qualified form, the short "familiar" form Docker prints, and the
//! `reference=` filter of `docker images`.
//!
//! # Grammar and normalisation (Docker's, from `distribution/reference`)
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ registry "/" ] path-component { "/" path-component }
//! registry   := host [ ":" port ]          host: DNS-ish name, IPv4, or [IPv6]
//! path-component := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! The first `/`-separated component is a registry when it is `localhost`,
//! contains a `.` or a `:`, or contains an upper-case letter (repository
//! paths must be lower case, so it cannot be a path). Otherwise the registry
//! is Docker Hub, `docker.io`; `index.docker.io` is the same registry under
//! its legacy name. On Docker Hub a single-component name is an official
//! image and lives under `library/`. The repository path may be at most 255
//! characters (counting `library/`, not the registry). A bare 64-character
//! lower-case hex string is refused as a name because it is an image ID.
//!
//! # Where this differs from Docker
//!
//! * Digests must be `sha256` (the only algorithm [`Digest`] represents);
//!   Docker also accepts `sha384`/`sha512`.
//! * A first component that looks like a registry (has a `.`, `:` or
//!   upper-case letter) but is not a valid host, such as `foo_bar.com/app`,
//!   is an error here. Docker's regex then silently parses the whole string
//!   as a Docker Hub path without a registry, which no registry accepts.
//! * A reference may keep both a tag and a digest (`app:v1@sha256:…`); the
//!   digest is what identifies the image. Docker's `ParseDockerRef` drops
//!   the tag in that case; callers that want that can ignore `tag` when
//!   `digest` is set.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::digest::Digest;

/// Docker Hub, the registry of names that do not name one.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Docker Hub's old name, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The Docker Hub namespace of official images (`busybox` is `library/busybox`).
const OFFICIAL_NAMESPACE: &str = "library/";
/// The tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path Docker accepts.
pub const MAX_REPOSITORY_LEN: usize = 255;
/// Longest tag Docker accepts.
pub const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host and optional port, e.g. `docker.io`, `myreg:5000`, `[::1]:5000`.
    pub registry: String,
    /// Repository path within the registry, e.g. `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format: {reason} (in {input:?})")]
pub struct ReferenceError {
    /// The string that was being parsed.
    pub input: String,
    pub reason: ReferenceErrorReason,
}

/// What exactly is wrong with a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceErrorReason {
    #[error("reference is empty")]
    Empty,
    #[error("repository name must have at least one component")]
    MissingName,
    #[error("repository name must be lowercase")]
    Uppercase,
    #[error("repository name must not be more than {MAX_REPOSITORY_LEN} characters")]
    NameTooLong,
    #[error("a 64-character hexadecimal string is an image ID and cannot be used as a repository name")]
    HexIdentifier,
    #[error("repository name has an empty path component (a leading, trailing or doubled \"/\")")]
    EmptyComponent,
    #[error(
        "path component {0:?} must be lowercase letters and digits, joined by single \".\", \"_\" or \"__\" or by dashes"
    )]
    InvalidComponent(String),
    #[error("registry {0:?} is not a valid host name, IPv4 address or [IPv6] address with an optional :port")]
    InvalidRegistry(String),
    #[error(
        "tag {0:?} must be 1 to {MAX_TAG_LEN} letters, digits, \"_\", \".\" or \"-\", not starting with \".\" or \"-\""
    )]
    InvalidTag(String),
    #[error("digest {0:?} must be an algorithm, \":\" and a hex-encoded hash of at least 32 characters")]
    InvalidDigest(String),
    #[error("digest {0:?} must be sha256 followed by 64 lowercase hex characters")]
    InvalidSha256(String),
    #[error("digest algorithm {0:?} is not supported (only sha256 is)")]
    UnsupportedDigestAlgorithm(String),
}

impl Reference {
    /// Parses and normalises a reference the way `docker pull` / `FROM` do:
    /// `busybox` becomes `docker.io/library/busybox:latest`. The default tag
    /// is added only when there is neither a tag nor a digest.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Reference::parse_without_default_tag(input)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }

    /// Like [`Reference::parse`] but leaves `tag` empty when none was
    /// written (Docker's `ParseNormalizedNamed`), for callers that must
    /// tell `app` from `app:latest`, such as `docker images app`.
    pub fn parse_without_default_tag(input: &str) -> Result<Reference, ReferenceError> {
        parse_reference(input).map_err(|reason| ReferenceError { input: input.to_string(), reason })
    }

    /// Registry and repository, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker prints it: without `docker.io/`, and without
    /// `library/` for official images (`busybox`, `user/app`,
    /// `myreg:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        match self.repository.strip_prefix(OFFICIAL_NAMESPACE) {
            // `library/a/b` is not an official image name; keep the namespace.
            Some(official) if !official.contains('/') => official.to_string(),
            // A first component that looks like a host (`l.i/b`,
            // `localhost/app`) would read back as a registry: keep the
            // registry so the short form names the same image. (Docker
            // drops it here and so prints names that mean something else.)
            _ if self.repository.split('/').next().is_some_and(looks_like_registry) => self.name(),
            _ => self.repository.clone(),
        }
    }

    /// The short form Docker prints: `busybox:latest`, `myreg:5000/app:v1`,
    /// `user/app@sha256:…`.
    pub fn familiar(&self) -> String {
        self.with_suffixes(self.familiar_name())
    }

    /// The fully qualified form: `docker.io/library/busybox:latest`.
    pub fn canonical(&self) -> String {
        self.with_suffixes(self.name())
    }

    /// Whether the registry is this machine: `localhost`, an address in
    /// 127.0.0.0/8 or `[::1]`, with or without a port. Such registries are
    /// commonly plain HTTP.
    pub fn is_localhost(&self) -> bool {
        let host = registry_host(&self.registry);
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
        }
        host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    fn with_suffixes(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(&digest.to_string());
        }
        name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Whether `r` passes `docker images --filter reference=PATTERN`.
///
/// Docker matches the pattern with Go's `path.Match` (`*` and `?` do not
/// cross `/`, `[...]` classes, `\` escapes) against the familiar name and
/// against the familiar name with its tag (or digest). So `busybox` and
/// `busybox:*` match `busybox:latest`, `*/app` matches `user/app:v1` but not
/// `app:v1`, and `*` matches no name that contains a `/`. A malformed pattern
/// matches nothing (Docker reports it as an error).
pub fn matches_reference_filter(pattern: &str, r: &Reference) -> bool {
    let Some(tokens) = compile_path_pattern(pattern) else {
        return false;
    };
    let name = r.familiar_name();
    let mut candidates = vec![r.familiar(), name.clone()];
    if let Some(tag) = &r.tag {
        candidates.push(format!("{name}:{tag}"));
    }
    if let Some(digest) = &r.digest {
        candidates.push(format!("{name}@{digest}"));
    }
    candidates.iter().any(|candidate| path_pattern_matches(&tokens, candidate))
}

fn parse_reference(input: &str) -> Result<Reference, ReferenceErrorReason> {
    if input.is_empty() {
        return Err(ReferenceErrorReason::Empty);
    }
    if input.len() == 64 && input.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ReferenceErrorReason::HexIdentifier);
    }

    let (registry, remainder) = split_registry(input);
    let (name_and_tag, digest) = match remainder.split_once('@') {
        Some((before, after)) => (before, Some(after)),
        None => (remainder, None),
    };
    // Repository paths never contain `:`, so the first one starts the tag.
    let (path, tag) = match name_and_tag.split_once(':') {
        Some((before, after)) => (before, Some(after)),
        None => (name_and_tag, None),
    };

    if path.is_empty() {
        return Err(ReferenceErrorReason::MissingName);
    }
    // Docker checks case before anything else so that `Ubuntu` gets the
    // helpful message rather than a generic format error.
    if path.chars().any(|c| c.is_uppercase()) {
        return Err(ReferenceErrorReason::Uppercase);
    }
    let registry = match registry {
        None | Some(LEGACY_DEFAULT_REGISTRY) => DEFAULT_REGISTRY,
        Some(explicit) => {
            validate_registry(explicit)?;
            explicit
        }
    };
    for component in path.split('/') {
        validate_path_component(component)?;
    }
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{OFFICIAL_NAMESPACE}{path}")
    } else {
        path.to_string()
    };
    if repository.len() > MAX_REPOSITORY_LEN {
        return Err(ReferenceErrorReason::NameTooLong);
    }
    let tag = tag.map(validate_tag).transpose()?;
    let digest = digest.map(parse_digest).transpose()?;
    Ok(Reference { registry: registry.to_string(), repository, tag, digest })
}

/// Splits off the registry the way Docker decides it: only the first
/// `/`-separated component can be one, and only when it cannot be a
/// repository path component.
fn split_registry(input: &str) -> (Option<&str>, &str) {
    let Some((first, rest)) = input.split_once('/') else {
        // A single component (`ubuntu:22.04`, even `localhost:5000`) is a
        // Docker Hub name; reading it as `host:port` would be ambiguous.
        return (None, input);
    };
    if looks_like_registry(first) { (Some(first), rest) } else { (None, input) }
}

/// Whether a first path component is read as a registry host.
fn looks_like_registry(first: &str) -> bool {
    first == "localhost" || first.contains(['.', ':']) || first.chars().any(|c| c.is_uppercase())
}

fn validate_registry(registry: &str) -> Result<(), ReferenceErrorReason> {
    let invalid = || ReferenceErrorReason::InvalidRegistry(registry.to_string());
    // Validate the host; what is left is the optional `:port`.
    let port = if let Some(bracketed) = registry.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(invalid());
        }
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(invalid());
        }
        port
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(invalid());
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn validate_path_component(component: &str) -> Result<(), ReferenceErrorReason> {
    if component.is_empty() {
        return Err(ReferenceErrorReason::EmptyComponent);
    }
    let invalid = || ReferenceErrorReason::InvalidComponent(component.to_string());
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let chars: Vec<char> = component.chars().collect();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < chars.len() && is_alnum(chars[i]) {
            i += 1;
        }
        if i == run_start {
            return Err(invalid());
        }
        if i == chars.len() {
            return Ok(());
        }
        let separator_start = i;
        while i < chars.len() && !is_alnum(chars[i]) {
            i += 1;
        }
        let separator: String = chars[separator_start..i].iter().collect();
        let allowed = matches!(separator.as_str(), "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !allowed {
            return Err(invalid());
        }
    }
}

fn validate_tag(tag: &str) -> Result<String, ReferenceErrorReason> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = tag.len() <= MAX_TAG_LEN
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if valid { Ok(tag.to_string()) } else { Err(ReferenceErrorReason::InvalidTag(tag.to_string())) }
}

/// Checks the general digest grammar first so that a well-formed digest of
/// another algorithm gets "unsupported" rather than "malformed".
fn parse_digest(text: &str) -> Result<Digest, ReferenceErrorReason> {
    let malformed = || ReferenceErrorReason::InvalidDigest(text.to_string());
    let (algorithm, encoded) = text.split_once(':').ok_or_else(malformed)?;
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !algorithm_ok || encoded.len() < 32 || !encoded.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    if algorithm != "sha256" {
        return Err(ReferenceErrorReason::UnsupportedDigestAlgorithm(algorithm.to_string()));
    }
    Digest::parse(text).map_err(|_| ReferenceErrorReason::InvalidSha256(text.to_string()))
}

/// The host part of `host[:port]` or `[ipv6][:port]`.
fn registry_host(registry: &str) -> &str {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(end) => &registry[..=end],
            None => registry,
        };
    }
    registry.split_once(':').map_or(registry, |(host, _)| host)
}

/// One element of a Go `path.Match` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathToken {
    Literal(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `[...]`: one character in (or, with `^`, out of) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Tokenises a `path.Match` pattern; `None` when Go would report
/// `ErrBadPattern` (unterminated or empty class, dangling `\`, bad range).
fn compile_path_pattern(pattern: &str) -> Option<Vec<PathToken>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                tokens.push(PathToken::Star);
                i += 1;
            }
            '?' => {
                tokens.push(PathToken::AnyChar);
                i += 1;
            }
            '\\' => {
                tokens.push(PathToken::Literal(*chars.get(i + 1)?));
                i += 2;
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let (lo, next) = class_char(&chars, i)?;
                    i = next;
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') {
                        let (end, next) = class_char(&chars, i + 1)?;
                        hi = end;
                        i = next;
                    }
                    if lo > hi {
                        return None;
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(PathToken::Class { negated, ranges });
            }
            other => {
                tokens.push(PathToken::Literal(other));
                i += 1;
            }
        }
    }
    Some(tokens)
}

/// One (possibly `\`-escaped) class member; it must be followed by more
/// pattern, since the class still needs its `]`.
fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    let (c, next) = match chars.get(i)? {
        '-' | ']' => return None,
        '\\' => (*chars.get(i + 1)?, i + 2),
        &c => (c, i + 1),
    };
    (next < chars.len()).then_some((c, next))
}

/// Matches by dynamic programming over (token, character) positions, so the
/// cost is bounded by pattern length × text length whatever the stars.
fn path_pattern_matches(tokens: &[PathToken], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    // `reachable[j]`: the tokens read so far can match exactly `text[..j]`.
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            PathToken::Star => {
                for j in 0..=text.len() {
                    next[j] = reachable[j] || (j > 0 && next[j - 1] && text[j - 1] != '/');
                }
            }
            single => {
                for j in 1..=text.len() {
                    let c = text[j - 1];
                    let fits = match single {
                        PathToken::Literal(expected) => *expected == c,
                        PathToken::AnyChar => c != '/',
                        PathToken::Class { negated, ranges } => {
                            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                        }
                        PathToken::Star => false,
                    };
                    next[j] = reachable[j - 1] && fits;
                }
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_match(pattern: &str, text: &str) -> bool {
        compile_path_pattern(pattern).is_some_and(|tokens| path_pattern_matches(&tokens, text))
    }

    #[test]
    fn path_match_follows_go_path_match() {
        assert!(path_match("*", "busybox"));
        assert!(!path_match("*", "user/app"));
        assert!(path_match("*/*", "user/app"));
        assert!(path_match("a*b*c*d*e*/f", "axbxcxdxexxx/f"));
        assert!(!path_match("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"));
        assert!(path_match("a*b?c*x", "abxbbxdbxebxczzx"));
        assert!(!path_match("a*b?c*x", "abxbbxdbxebxczzy"));
        assert!(path_match("ab[^e-g]", "abc"));
        assert!(path_match("a\\*b", "a*b"));
        assert!(path_match("[\\]a]", "]"));
        assert!(path_match("", ""));
        for bad in ["[", "[]a]", "[-x]", "[x-]", "\\", "a[", "[^", "[a-b-c]"] {
            assert!(compile_path_pattern(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn path_match_is_polynomial() {
        let text = "a".repeat(5_000);
        assert!(!path_match("*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn registry_host_strips_ports() {
        assert_eq!(registry_host("localhost:5000"), "localhost");
        assert_eq!(registry_host("[::1]:5000"), "[::1]");
        assert_eq!(registry_host("[::1]"), "[::1]");
        assert_eq!(registry_host("docker.io"), "docker.io");
    }
}

//! Checking a user name and password against a registry, as `docker
//! login` does: ask `/v2/` anonymously; if the registry challenges with
//! Basic auth, ask again with the credentials; if it challenges with
//! Bearer, ask its token service for a token with them. A 401 (or 403)
//! at the end means the credentials are wrong.

use std::time::Duration;

use super::credentials::Credentials;
use super::error::{RegistryError, Result};
use super::session::Session;

/// How the registry took the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// The registry checked them and accepted them.
    Accepted,
    /// The registry asks for no credentials at all.
    NotRequired,
}

/// A `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn parse(header: &str) -> Challenge {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = Vec::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let Some((key, after)) = rest.split_once('=') else { break };
            let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            };
            params.push((key, value.to_string()));
            rest = remainder.trim_start().trim_start_matches(',').trim_start();
        }
        Challenge { scheme: scheme.to_ascii_lowercase(), params }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Checks `credentials` against `registry`.
pub fn verify(session: &Session, registry: &str, credentials: &Credentials) -> Result<LoginResult> {
    let base = session.base_url(registry)?;
    let insecure = session.settings().is_insecure(registry);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(insecure)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| RegistryError::Protocol { registry: registry.into(), message: e.to_string() })?;
    let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
        registry: registry.to_string(),
        message: e.to_string(),
    };
    let unauthorized = |status: reqwest::StatusCode| RegistryError::Unauthorized {
        registry: registry.to_string(),
        detail: format!(" (HTTP {status}): incorrect username or password"),
    };
    session.block_on(async {
        let url = format!("{base}/v2/");
        let first = client.get(&url).send().await.map_err(unreachable)?;
        if first.status().is_success() {
            return Ok(LoginResult::NotRequired);
        }
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                message: format!("GET /v2/ answered HTTP {}; is this a registry?", first.status()),
            });
        }
        let challenge = first
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map(Challenge::parse)
            .unwrap_or(Challenge { scheme: "basic".into(), params: Vec::new() });
        let answer = if challenge.scheme == "bearer" {
            let realm = challenge.param("realm").ok_or_else(|| RegistryError::Protocol {
                registry: registry.to_string(),
                message: "the Bearer challenge names no token service (realm)".into(),
            })?;
            let mut query: Vec<(&str, &str)> = vec![("account", credentials.username.as_str())];
            if let Some(service) = challenge.param("service") {
                query.push(("service", service));
            }
            client
                .get(realm)
                .query(&query)
                .basic_auth(&credentials.username, Some(&credentials.secret))
                .send()
                .await
                .map_err(unreachable)?
        } else {
            client
                .get(&url)
                .basic_auth(&credentials.username, Some(&credentials.secret))
                .send()
                .await
                .map_err(unreachable)?
        };
        match answer.status() {
            s if s.is_success() => Ok(LoginResult::Accepted),
            s @ (reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN) => Err(unauthorized(s)),
            s => Err(RegistryError::Protocol {
                registry: registry.to_string(),
                message: format!("checking the credentials answered HTTP {s}"),
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_and_bare_values() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let b = Challenge::parse(r#"Basic realm=Registry"#);
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.param("realm"), Some("Registry"));
    }
}

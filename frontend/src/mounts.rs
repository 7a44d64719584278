//! `RUN --mount=…` values: a comma-separated list of `key=value` fields
//! (CSV, so a field may be quoted), checked per mount type.

use crate::error::{FrontendError, suggest};
use crate::graph::{CacheSharing, Mount, MountSource};
use crate::span::Span;

/// Splits one `--mount` value into fields, honouring CSV double quotes.
fn csv_fields(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn parse_octal(v: &str, span: Span, what: &str) -> Result<u32, FrontendError> {
    u32::from_str_radix(v, 8)
        .map_err(|_| FrontendError::new(format!("invalid {what} {v:?}: expected an octal number"), span))
}

fn parse_id(v: &str, span: Span, what: &str) -> Result<u32, FrontendError> {
    v.parse().map_err(|_| FrontendError::new(format!("invalid {what} {v:?}: expected a number"), span))
}

fn parse_bool(v: &str, span: Span, what: &str) -> Result<bool, FrontendError> {
    match v.to_ascii_lowercase().as_str() {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(FrontendError::new(format!("invalid value {v:?} for {what}: expected true or false"), span)),
    }
}

/// The `from=` field of a `--mount` value, before any expansion.
pub fn mount_from(value: &str) -> Option<String> {
    csv_fields(value).into_iter().rev().find_map(|f| {
        let (k, v) = f.split_once('=')?;
        k.trim().eq_ignore_ascii_case("from").then(|| v.to_string())
    })
}

/// Parses one `--mount` value. Each field's value goes through `expand`
/// (after the CSV split, as BuildKit does, so a variable holding a comma
/// stays one value); `resolve_from` maps a `from=` value to a stage or an
/// image; `workdir` makes relative targets absolute.
pub fn parse_mount(
    value: &str,
    span: Span,
    workdir: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, FrontendError>,
    resolve_from: &mut dyn FnMut(&str) -> Result<MountSource, FrontendError>,
) -> Result<Mount, FrontendError> {
    let mut kind = "bind".to_string();
    let mut fields = Vec::new();
    for field in csv_fields(value) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        if k.is_empty() {
            continue;
        }
        let v = match v {
            Some(v) if k != "from" => Some(expand(&v)?),
            other => other,
        };
        if k == "type" {
            kind = v.unwrap_or_default().to_ascii_lowercase();
        } else {
            fields.push((k, v));
        }
    }
    let known: &[&str] = match kind.as_str() {
        "bind" => {
            &["target", "dst", "destination", "source", "src", "from", "rw", "readwrite", "ro", "readonly"]
        }
        "cache" => &[
            "target",
            "dst",
            "destination",
            "id",
            "sharing",
            "from",
            "source",
            "src",
            "mode",
            "uid",
            "gid",
            "ro",
            "readonly",
            "rw",
            "readwrite",
        ],
        "tmpfs" => &["target", "dst", "destination", "size", "ro", "readonly", "rw", "readwrite"],
        "secret" => &[
            "id",
            "source",
            "src",
            "target",
            "dst",
            "destination",
            "env",
            "required",
            "mode",
            "uid",
            "gid",
            "ro",
            "readonly",
        ],
        "ssh" => &["id", "target", "dst", "destination", "required", "mode", "uid", "gid", "ro", "readonly"],
        other => {
            let mut e = FrontendError::new(format!("unsupported mount type {other:?}"), span)
                .with_hint("use type=bind, cache, tmpfs, secret or ssh");
            if let Some(near) = suggest(other, ["bind", "cache", "tmpfs", "secret", "ssh"]) {
                e = e.with_hint(format!("did you mean type={near}?"));
            }
            return Err(e);
        }
    };
    for (k, v) in &fields {
        if !known.contains(&k.as_str()) {
            let mut e = FrontendError::new(format!("unexpected key {k:?} in a {kind} mount"), span);
            if let Some(near) = suggest(k, known.iter().copied()) {
                e = e.with_hint(format!("did you mean {near}?"));
            } else {
                e = e.with_hint(format!("a {kind} mount takes {}", known.join(", ")));
            }
            return Err(e);
        }
        // Only the boolean switches may stand alone.
        let switch = matches!(k.as_str(), "ro" | "readonly" | "rw" | "readwrite" | "required");
        if v.is_none() && !switch {
            return Err(FrontendError::new(
                format!("invalid field {k:?}: it must be a key=value pair"),
                span,
            )
            .with_hint(format!("write {k}=<value>")));
        }
    }
    let get = |names: &[&str]| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone().unwrap_or_default())
    };
    let target = get(&["target", "dst", "destination"]).map(|t| absolute(&t, workdir));
    if target.as_deref() == Some("/") {
        return Err(FrontendError::new("invalid mount target \"/\"", span)
            .with_hint("mount on a directory below the root"));
    }
    let need_target = |t: Option<String>| {
        t.ok_or_else(|| {
            FrontendError::new(format!("a {kind} mount needs a target"), span).with_hint("add target=/path")
        })
    };
    let readonly_flag = get(&["ro", "readonly"]).map(|v| parse_bool(&v, span, "readonly")).transpose()?;
    let readwrite_flag = get(&["rw", "readwrite"]).map(|v| parse_bool(&v, span, "readwrite")).transpose()?;
    let uid = get(&["uid"]).map(|v| parse_id(&v, span, "uid")).transpose()?;
    let gid = get(&["gid"]).map(|v| parse_id(&v, span, "gid")).transpose()?;
    let mode = get(&["mode"]).map(|v| parse_octal(&v, span, "mode")).transpose()?;
    let required = get(&["required"]).map(|v| parse_bool(&v, span, "required")).transpose()?.unwrap_or(false);
    Ok(match kind.as_str() {
        "bind" => {
            let from = match get(&["from"]) {
                Some(f) => resolve_from(&f)?,
                None => MountSource::Context,
            };
            Mount::Bind {
                target: need_target(target)?,
                from,
                source: get(&["source", "src"]).unwrap_or_default(),
                readwrite: readwrite_flag.unwrap_or(false) && readonly_flag != Some(true),
            }
        }
        "cache" => {
            let target = need_target(target)?;
            let sharing =
                match get(&["sharing"]).unwrap_or_else(|| "shared".into()).to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    other => {
                        return Err(FrontendError::new(format!("unsupported sharing value {other:?}"), span)
                            .with_hint("use sharing=shared, private or locked"));
                    }
                };
            let from = get(&["from"]).map(|f| resolve_from(&f)).transpose()?;
            Mount::Cache {
                id: get(&["id"]).filter(|i| !i.is_empty()).unwrap_or_else(|| target.clone()),
                target,
                sharing,
                from,
                source: get(&["source", "src"]).unwrap_or_default(),
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
                mode: mode.unwrap_or(0o755),
                readonly: readonly_flag.unwrap_or(false),
            }
        }
        "tmpfs" => Mount::Tmpfs {
            target: need_target(target)?,
            size: get(&["size"]).map(|v| parse_size(&v, span)).transpose()?,
        },
        "secret" => {
            let by_source = get(&["source", "src"]).filter(|s| !s.is_empty());
            let by_id = get(&["id"]).filter(|s| !s.is_empty());
            if by_source.is_some() && by_id.is_some() {
                return Err(FrontendError::new("a secret mount takes source or id, not both", span)
                    .with_hint("name the secret once, with id=<id>"));
            }
            let id = by_source
                .or(by_id)
                .or_else(|| target.as_ref().map(|t| t.rsplit('/').next().unwrap_or("").to_string()));
            let Some(id) = id.filter(|i| !i.is_empty()) else {
                return Err(FrontendError::new("a secret mount needs an id or a target", span)
                    .with_hint("write --mount=type=secret,id=<id>"));
            };
            let env = get(&["env"]).filter(|e| !e.is_empty());
            let target = match (&target, &env) {
                (None, None) => Some(format!("/run/secrets/{id}")),
                _ => target,
            };
            Mount::Secret {
                id,
                target,
                env,
                required,
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
                mode: mode.unwrap_or(0o400),
            }
        }
        _ => Mount::Ssh {
            id: get(&["id"]).filter(|i| !i.is_empty()).unwrap_or_else(|| "default".into()),
            target: target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".into()),
            required,
            uid: uid.unwrap_or(0),
            gid: gid.unwrap_or(0),
            mode: mode.unwrap_or(0o600),
        },
    })
}

/// Parses a tmpfs size such as `64m`, `1g` or a byte count.
fn parse_size(v: &str, span: Span) -> Result<u64, FrontendError> {
    let lower = v.trim().to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (num, mult) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| {
        FrontendError::new(format!("invalid size {v:?}"), span).with_hint("write e.g. size=64m")
    })
}

/// Joins a possibly relative path onto the working directory.
pub fn absolute(path: &str, workdir: &str) -> String {
    if path.starts_with('/') {
        clean(path)
    } else {
        clean(&format!("{}/{}", if workdir.is_empty() { "/" } else { workdir }, path))
    }
}

/// Go's `path.Clean` for absolute slash paths.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_from(_: &str) -> Result<MountSource, FrontendError> {
        Ok(MountSource::Stage(0))
    }

    fn verbatim(v: &str) -> Result<String, FrontendError> {
        Ok(v.to_string())
    }

    fn parse(value: &str, workdir: &str) -> Result<Mount, FrontendError> {
        parse_mount(value, Span::default(), workdir, &mut verbatim, &mut no_from)
    }

    #[test]
    fn cache_mount_defaults_and_relative_target() {
        let m = parse("type=cache,target=.cache", "/app").unwrap();
        match m {
            Mount::Cache { id, target, sharing, mode, .. } => {
                assert_eq!(target, "/app/.cache");
                assert_eq!(id, "/app/.cache");
                assert_eq!(sharing, CacheSharing::Shared);
                assert_eq!(mode, 0o755);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secret_mount_defaults_target_from_id() {
        let m = parse("type=secret,id=token", "/").unwrap();
        assert!(matches!(m, Mount::Secret { target: Some(t), .. } if t == "/run/secrets/token"));
    }

    #[test]
    fn unknown_keys_and_types_are_errors_with_hints() {
        let e = parse("type=cache,traget=/x", "/").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean target?"));
        assert!(parse("type=nfs,target=/x", "/").is_err());
    }

    #[test]
    fn field_rules_follow_buildkit() {
        assert!(parse("type=bind,target=/", "/").is_err(), "the root is no mount target");
        assert!(parse("type=cache,target=/x,mode", "/").is_err(), "mode needs a value");
        assert!(parse("type=secret,id=a,source=b", "/").is_err(), "source and id together");
        let m = parse("type=secret,src=tok,required", "/").unwrap();
        assert!(matches!(m, Mount::Secret { id, required: true, .. } if id == "tok"));
        let m = parse("type=secret,id=t,env=TOKEN", "/").unwrap();
        assert!(matches!(m, Mount::Secret { target: None, env: Some(e), .. } if e == "TOKEN"));
        let m = parse("type=bind,source=src,target=/s,rw", "/").unwrap();
        assert!(matches!(m, Mount::Bind { readwrite: true, .. }));
        assert_eq!(mount_from("type=bind,FROM=build,target=/x"), Some("build".into()));
        let e = parse("type=cahce,target=/x", "/").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean type=cache?"));
    }

    #[test]
    fn quoted_csv_fields() {
        assert_eq!(
            csv_fields(r#"type=bind,"source=a,b",target=/x"#),
            vec!["type=bind", "source=a,b", "target=/x"]
        );
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/a/./b/../c//"), "/a/c");
        assert_eq!(absolute("x/../y", "/w"), "/w/y");
        assert_eq!(absolute("../../..", "/w"), "/");
    }
}

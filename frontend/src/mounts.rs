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
    let (kind, fields) = read_fields(value, expand)?;
    let known = known_keys(&kind, span)?;
    check_fields(&fields, known, &kind, span)?;
    let common = Common::parse(&fields, workdir, &kind, span)?;
    match kind.as_str() {
        "bind" => bind_mount(&fields, common, resolve_from),
        "cache" => cache_mount(&fields, common, resolve_from),
        "tmpfs" => Ok(Mount::Tmpfs {
            target: common.need_target()?,
            size: fields.get(&["size"]).map(|v| parse_size(&v, span)).transpose()?,
        }),
        "secret" => secret_mount(&fields, common),
        _ => Ok(ssh_mount(&fields, common)),
    }
}

/// The fields of a mount other than `type`, keys lower-cased, in order; a
/// field without `=` (a switch such as `ro`) has no value.
struct Fields(Vec<(String, Option<String>)>);

impl Fields {
    /// The last value given under any of `names`; a bare switch gives "".
    fn get(&self, names: &[&str]) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone().unwrap_or_default())
    }
}

/// Splits a mount value into its type (`bind` unless given) and its other
/// fields, expanding every value but `from=`'s.
fn read_fields(
    value: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, FrontendError>,
) -> Result<(String, Fields), FrontendError> {
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
    Ok((kind, Fields(fields)))
}

const BIND_KEYS: &[&str] =
    &["target", "dst", "destination", "source", "src", "from", "rw", "readwrite", "ro", "readonly"];
const CACHE_KEYS: &[&str] = &[
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
];
const TMPFS_KEYS: &[&str] = &["target", "dst", "destination", "size", "ro", "readonly", "rw", "readwrite"];
const SECRET_KEYS: &[&str] = &[
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
];
const SSH_KEYS: &[&str] =
    &["id", "target", "dst", "destination", "required", "mode", "uid", "gid", "ro", "readonly"];

/// The keys a mount type takes; an unknown type is an error.
fn known_keys(kind: &str, span: Span) -> Result<&'static [&'static str], FrontendError> {
    Ok(match kind {
        "bind" => BIND_KEYS,
        "cache" => CACHE_KEYS,
        "tmpfs" => TMPFS_KEYS,
        "secret" => SECRET_KEYS,
        "ssh" => SSH_KEYS,
        other => {
            let mut e = FrontendError::new(format!("unsupported mount type {other:?}"), span)
                .with_hint("use type=bind, cache, tmpfs, secret or ssh");
            if let Some(near) = suggest(other, ["bind", "cache", "tmpfs", "secret", "ssh"]) {
                e = e.with_hint(format!("did you mean type={near}?"));
            }
            return Err(e);
        }
    })
}

/// Every key must be one the type takes, and only the boolean switches
/// may stand alone.
fn check_fields(fields: &Fields, known: &[&str], kind: &str, span: Span) -> Result<(), FrontendError> {
    for (k, v) in &fields.0 {
        if !known.contains(&k.as_str()) {
            // `type` is read before the fields, so it is no field of any
            // type; a misspelt `type` (`typ=tmpfs`) is still suggested.
            let hint = match suggest(k, known.iter().copied().chain(["type"])) {
                Some(near) => format!("did you mean {near}?"),
                None => format!("a {kind} mount takes {}", known.join(", ")),
            };
            return Err(
                FrontendError::new(format!("unexpected key {k:?} in a {kind} mount"), span).with_hint(hint)
            );
        }
        let switch = matches!(k.as_str(), "ro" | "readonly" | "rw" | "readwrite" | "required");
        if v.is_none() && !switch {
            return Err(FrontendError::new(
                format!("invalid field {k:?}: it must be a key=value pair"),
                span,
            )
            .with_hint(format!("write {k}=<value>")));
        }
    }
    Ok(())
}

/// The fields several mount types share, parsed (and checked) once.
struct Common<'a> {
    kind: &'a str,
    span: Span,
    /// Absolute; never `/`.
    target: Option<String>,
    readonly: Option<bool>,
    readwrite: Option<bool>,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
    required: bool,
}

impl<'a> Common<'a> {
    fn parse(fields: &Fields, workdir: &str, kind: &'a str, span: Span) -> Result<Common<'a>, FrontendError> {
        let target = fields.get(&["target", "dst", "destination"]).map(|t| absolute(&t, workdir));
        if target.as_deref() == Some("/") {
            return Err(FrontendError::new("invalid mount target \"/\"", span)
                .with_hint("mount on a directory below the root"));
        }
        Ok(Common {
            kind,
            span,
            target,
            readonly: fields
                .get(&["ro", "readonly"])
                .map(|v| parse_bool(&v, span, "readonly"))
                .transpose()?,
            readwrite: fields
                .get(&["rw", "readwrite"])
                .map(|v| parse_bool(&v, span, "readwrite"))
                .transpose()?,
            uid: fields.get(&["uid"]).map(|v| parse_id(&v, span, "uid")).transpose()?,
            gid: fields.get(&["gid"]).map(|v| parse_id(&v, span, "gid")).transpose()?,
            mode: fields.get(&["mode"]).map(|v| parse_octal(&v, span, "mode")).transpose()?,
            required: fields
                .get(&["required"])
                .map(|v| parse_bool(&v, span, "required"))
                .transpose()?
                .unwrap_or(false),
        })
    }

    fn need_target(&self) -> Result<String, FrontendError> {
        self.target.clone().ok_or_else(|| {
            FrontendError::new(format!("a {} mount needs a target", self.kind), self.span)
                .with_hint("add target=/path")
        })
    }
}

fn bind_mount(
    fields: &Fields,
    common: Common,
    resolve_from: &mut dyn FnMut(&str) -> Result<MountSource, FrontendError>,
) -> Result<Mount, FrontendError> {
    let from = match fields.get(&["from"]) {
        Some(f) => resolve_from(&f)?,
        None => MountSource::Context,
    };
    Ok(Mount::Bind {
        target: common.need_target()?,
        from,
        source: fields.get(&["source", "src"]).unwrap_or_default(),
        readwrite: common.readwrite.unwrap_or(false) && common.readonly != Some(true),
    })
}

fn cache_mount(
    fields: &Fields,
    common: Common,
    resolve_from: &mut dyn FnMut(&str) -> Result<MountSource, FrontendError>,
) -> Result<Mount, FrontendError> {
    let target = common.need_target()?;
    let sharing =
        match fields.get(&["sharing"]).unwrap_or_else(|| "shared".into()).to_ascii_lowercase().as_str() {
            "shared" => CacheSharing::Shared,
            "private" => CacheSharing::Private,
            "locked" => CacheSharing::Locked,
            other => {
                return Err(FrontendError::new(format!("unsupported sharing value {other:?}"), common.span)
                    .with_hint("use sharing=shared, private or locked"));
            }
        };
    let from = fields.get(&["from"]).map(|f| resolve_from(&f)).transpose()?;
    Ok(Mount::Cache {
        id: fields.get(&["id"]).filter(|i| !i.is_empty()).unwrap_or_else(|| target.clone()),
        target,
        sharing,
        from,
        source: fields.get(&["source", "src"]).unwrap_or_default(),
        uid: common.uid.unwrap_or(0),
        gid: common.gid.unwrap_or(0),
        mode: common.mode.unwrap_or(0o755),
        readonly: common.readonly.unwrap_or(false),
    })
}

/// A secret is named by `id` or `source` (not both), else by the target's
/// file name; without a target or `env` it goes to `/run/secrets/<id>`.
fn secret_mount(fields: &Fields, common: Common) -> Result<Mount, FrontendError> {
    let span = common.span;
    let by_source = fields.get(&["source", "src"]).filter(|s| !s.is_empty());
    let by_id = fields.get(&["id"]).filter(|s| !s.is_empty());
    if by_source.is_some() && by_id.is_some() {
        return Err(FrontendError::new("a secret mount takes source or id, not both", span)
            .with_hint("name the secret once, with id=<id>"));
    }
    let id = by_source
        .or(by_id)
        .or_else(|| common.target.as_ref().map(|t| t.rsplit('/').next().unwrap_or("").to_string()));
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return Err(FrontendError::new("a secret mount needs an id or a target", span)
            .with_hint("write --mount=type=secret,id=<id>"));
    };
    let env = fields.get(&["env"]).filter(|e| !e.is_empty());
    let target = match (&common.target, &env) {
        (None, None) => Some(format!("/run/secrets/{id}")),
        _ => common.target,
    };
    Ok(Mount::Secret {
        id,
        target,
        env,
        required: common.required,
        uid: common.uid.unwrap_or(0),
        gid: common.gid.unwrap_or(0),
        mode: common.mode.unwrap_or(0o400),
    })
}

fn ssh_mount(fields: &Fields, common: Common) -> Mount {
    Mount::Ssh {
        id: fields.get(&["id"]).filter(|i| !i.is_empty()).unwrap_or_else(|| "default".into()),
        // Empty until the RUN numbers its ssh mounts (`ssh_agent.N`).
        target: common.target.unwrap_or_default(),
        required: common.required,
        uid: common.uid.unwrap_or(0),
        gid: common.gid.unwrap_or(0),
        mode: common.mode.unwrap_or(0o600),
    }
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

//! `--annotation [TYPE[,TYPE…][[os/arch]]:]KEY=VALUE`, as `docker buildx
//! build` takes it: OCI annotations for the image's manifest (the default
//! type), the index (`index`), the index's descriptors of the manifest
//! (`manifest-descriptor`) or the layout's descriptor of an index
//! (`index-descriptor`); `[os/arch]` limits one to that platform's
//! components. They are parsed once per target platform. As in buildx,
//! asking for a component the build does not produce is an error: a
//! one-platform build writes an index only in an OCI archive (`index.json`,
//! whose entries are the manifest's descriptors) and nests none; a
//! multi-platform build pushes an index and writes one nested in an OCI
//! archive's `index.json` (the `index-descriptor`'s place).

use std::collections::BTreeMap;

use rbuild_frontend::lower::Platform;

use crate::output::Output;
use crate::report::Failure;

/// The annotations of one build, by where they go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// Into the image manifest (kept with the image in the store, so every
    /// export and push writes them).
    pub manifest: BTreeMap<String, String>,
    /// Into an OCI archive's `index.json`.
    pub index: BTreeMap<String, String>,
    /// Onto the manifest's entries in `index.json` (and in a pushed index).
    pub manifest_descriptor: BTreeMap<String, String>,
    /// Onto an OCI archive's `index.json` entry for the nested index of a
    /// multi-platform build.
    pub index_descriptor: BTreeMap<String, String>,
}

const EXAMPLE: &str = "for example: --annotation org.opencontainers.image.title=app, or --annotation \
'index,manifest:org.opencontainers.image.vendor=Acme'";

fn malformed(raw: &str, why: &str) -> Failure {
    Failure::new(format!("invalid --annotation value {raw:?}: {why}")).hint(format!(
        "expected KEY=VALUE or TYPE[,TYPE…][[os/arch]]:KEY=VALUE, TYPE among manifest, index, \
         manifest-descriptor, index-descriptor; {EXAMPLE}"
    ))
}

impl Annotations {
    /// Parses every `--annotation`, for an image of `platform`.
    pub fn parse(raw: &[String], platform: &Platform) -> Result<Annotations, Failure> {
        let mut parsed = Annotations::default();
        for value in raw {
            parsed.add(value, platform)?;
        }
        Ok(parsed)
    }

    fn add(&mut self, raw: &str, platform: &Platform) -> Result<(), Failure> {
        let (key_part, value) = raw.split_once('=').ok_or_else(|| malformed(raw, "no '=' after the key"))?;
        // The key may hold ':' itself (`a:b=c` is the key `b` of type `a`
        // only when `a` is a type list, as buildx reads it).
        let (types, key) = match key_part.split_once(':') {
            Some((prefix, key)) if looks_like_types(prefix) => (Some(prefix), key),
            _ => (None, key_part),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(malformed(raw, "the key is empty or has blanks"));
        }
        let (types, only_for) = match types {
            None => ("manifest", None),
            Some(t) => match t.split_once('[') {
                Some((types, rest)) => {
                    let p = rest.strip_suffix(']').ok_or_else(|| malformed(raw, "a '[' without its ']'"))?;
                    (if types.is_empty() { "manifest" } else { types }, Some(p))
                }
                None => (t, None),
            },
        };
        if let Some(p) = only_for {
            if p.split('/').count() < 2 || p.split('/').any(str::is_empty) {
                return Err(malformed(raw, "the platform in [] is not os/arch[/variant]"));
            }
            if !platform_matches(p, platform) {
                return Ok(());
            }
        }
        for kind in types.split(',') {
            let into = match kind {
                "manifest" => &mut self.manifest,
                "index" => &mut self.index,
                "manifest-descriptor" => &mut self.manifest_descriptor,
                "index-descriptor" => &mut self.index_descriptor,
                other => {
                    return Err(malformed(raw, &format!("unknown annotation type {other:?}")));
                }
            };
            into.insert(key.to_string(), value.to_string());
        }
        Ok(())
    }

    /// Index and descriptor annotations need an index: an OCI archive, or
    /// (`pushes_index`) a multi-platform push; an index descriptor needs
    /// an index nested in an OCI archive, which only a multi-platform
    /// build writes.
    pub fn check_outputs(
        &self,
        outputs: &[Output],
        multi_platform: bool,
        pushes: bool,
    ) -> Result<(), Failure> {
        let oci_archive = outputs.iter().any(|o| matches!(o, Output::OciArchive(_)));
        let nests_an_index = multi_platform && oci_archive;
        if !self.index_descriptor.is_empty() && !nests_an_index {
            return Err(Failure::new(
                "--annotation index-descriptor:… goes on an OCI archive's entry for a nested image index, and \
                 only a multi-platform build with -o type=oci writes one, so this annotation would be lost",
            )
            .hint(
                "build several platforms (--platform linux/amd64,linux/arm64) with -o type=oci,dest=FILE, or \
                 annotate the index itself: --annotation index:KEY=VALUE",
            ));
        }
        let index_wanted = !self.index.is_empty() || !self.manifest_descriptor.is_empty();
        let pushes_an_index = multi_platform && pushes;
        if index_wanted && !oci_archive && !pushes_an_index {
            return Err(Failure::new(
                "--annotation index:… and manifest-descriptor:… need an image index, and this build writes \
                 none (a one-platform push, the store and a docker archive hold the manifest alone)",
            )
            .hint(
                "add -o type=oci,dest=FILE, whose index.json is the index, or push several platforms; or \
                 annotate the manifest",
            ));
        }
        Ok(())
    }

    /// What goes into the index of a multi-platform build, gathered over
    /// every platform's parse (an `index[os/arch]:` one counts when its
    /// platform is built).
    pub fn for_index(per_platform: &[Annotations]) -> Annotations {
        let mut merged = Annotations::default();
        for a in per_platform {
            merged.index.extend(a.index.clone());
            merged.index_descriptor.extend(a.index_descriptor.clone());
        }
        merged
    }
}

/// Whether a prefix before ':' is a list of annotation types (with an
/// optional `[platform]`), rather than part of a key.
fn looks_like_types(prefix: &str) -> bool {
    let types = prefix.split('[').next().unwrap_or("");
    prefix.contains('[')
        || types.split(',').all(|t| {
            matches!(t, "manifest" | "index" | "manifest-descriptor" | "index-descriptor")
                || (!t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        })
}

/// `os/arch[/variant]` against the image's platform.
fn platform_matches(spec: &str, platform: &Platform) -> bool {
    let mut parts = spec.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    os == Some(platform.os.as_str())
        && arch == Some(platform.architecture.as_str())
        && variant.is_none_or(|v| platform.variant.as_deref() == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Platform {
        Platform { os: "linux".into(), architecture: "amd64".into(), variant: None }
    }

    fn parse(values: &[&str]) -> Result<Annotations, Failure> {
        Annotations::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>(), &amd64())
    }

    #[test]
    fn types_platforms_and_keys_with_colons() {
        let a = parse(&[
            "org.opencontainers.image.title=app",
            "index,manifest:vendor=Acme",
            "manifest-descriptor:doc=https://x",
            "manifest[linux/amd64]:arch=yes",
            "manifest[linux/arm64]:arch=no",
            "[linux/amd64]:bare=platform",
            "com.example:key=v=w",
        ])
        .unwrap();
        assert_eq!(a.manifest.get("org.opencontainers.image.title").map(String::as_str), Some("app"));
        assert_eq!(a.manifest.get("vendor"), a.index.get("vendor"));
        assert_eq!(a.manifest_descriptor.get("doc").map(String::as_str), Some("https://x"));
        assert_eq!(a.manifest.get("arch").map(String::as_str), Some("yes"), "only the host platform's");
        assert_eq!(a.manifest.get("bare").map(String::as_str), Some("platform"));
        assert_eq!(a.manifest.get("com.example:key").map(String::as_str), Some("v=w"), "a key with a colon");
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "novalue",
            "=v",
            "manifest:=v",
            "manifst,index:k=v",
            "manifest[linux]:k=v",
            "manifest[linux/amd64:k=v",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
        let oci = [Output::OciArchive("x.tar".into())];
        let nested = parse(&["index-descriptor:k=v"]).unwrap();
        assert!(nested.check_outputs(&oci, false, true).is_err(), "one platform nests no index");
        assert!(nested.check_outputs(&[], true, true).is_err(), "a push has no index descriptor");
        assert!(nested.check_outputs(&oci, true, false).is_ok());
        let index = parse(&["index:k=v"]).unwrap();
        assert!(index.check_outputs(&[], false, true).is_err());
        assert!(index.check_outputs(&oci, false, false).is_ok());
        assert!(index.check_outputs(&[], true, true).is_ok(), "a multi-platform push is an index");
        assert!(index.check_outputs(&[], true, false).is_err());
    }
}

//! The `-o` specs of a build: where its result goes (`type=docker|oci|tar|local`
//! or a bare directory) and which names it gets in the store, pushed or not
//! (`type=image`, `type=registry`).

use std::path::PathBuf;

use rbuild_oci::reference::Reference;

use crate::report::Failure;

/// Where the build's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    DockerArchive(PathBuf),
    OciArchive(PathBuf),
    LocalDir(PathBuf),
    RootfsTar(PathBuf),
}

/// Parses `-o` values: `type=docker,dest=F`, `type=oci,dest=F`,
/// `type=local,dest=D`, `type=tar,dest=F`, or a bare directory.
pub fn parse_output(spec: &str) -> Result<Output, Failure> {
    if !spec.contains('=') {
        return Ok(Output::LocalDir(PathBuf::from(spec)));
    }
    let mut kind = None;
    let mut dest = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            _ => {
                return Err(Failure::new(format!("unknown field {field:?} in --output {spec:?}"))
                    .hint("write type=docker|oci|tar|local,dest=PATH"));
            }
        }
    }
    let dest = dest.ok_or_else(|| Failure::new(format!("--output {spec:?} needs dest=PATH")))?;
    match kind.as_deref() {
        Some("docker") => Ok(Output::DockerArchive(dest)),
        Some("oci") => Ok(Output::OciArchive(dest)),
        Some("local") => Ok(Output::LocalDir(dest)),
        Some("tar") => Ok(Output::RootfsTar(dest)),
        Some(other) => {
            Err(Failure::new(format!("unknown output type {other:?}")).hint("use docker, oci, tar or local"))
        }
        None => Err(Failure::new(format!("--output {spec:?} needs type=…"))
            .hint("write type=docker|oci|tar|local,dest=PATH")),
    }
}

/// `-o type=image,name=REF[,push=true]`: name the result in the store, and
/// push it when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutput {
    pub names: Vec<Reference>,
    pub push: bool,
}

/// Parses `type=image,…`; `None` when `spec` is another kind of output.
pub fn parse_image_output(spec: &str) -> Option<Result<ImageOutput, Failure>> {
    if !spec.split(',').any(|f| f == "type=image" || f == "type=registry") {
        return None;
    }
    // `type=registry` is BuildKit's shorthand for an image output that pushes.
    let mut out = ImageOutput { names: Vec::new(), push: spec.split(',').any(|f| f == "type=registry") };
    for field in spec.split(',') {
        let parsed = match field.split_once('=') {
            Some(("type", _)) => Ok(()),
            Some(("name", names)) => names.split(';').try_for_each(|n| {
                let r = Reference::parse(n)
                    .map_err(|e| Failure::new(format!("invalid name {n:?} in --output {spec:?}: {e}")))?;
                out.names.push(r);
                Ok(())
            }),
            Some(("push", v)) => v
                .parse::<bool>()
                .map(|push| out.push = push)
                .map_err(|_| Failure::new(format!("push={v} in --output {spec:?} must be true or false"))),
            _ => Err(Failure::new(format!("unknown field {field:?} in --output {spec:?}"))
                .hint("write type=image,name=REGISTRY/NAME:TAG[,push=true]")),
        };
        if let Err(e) = parsed {
            return Some(Err(e));
        }
    }
    if out.names.is_empty() {
        return Some(Err(Failure::new(format!("--output {spec:?} needs name=REF"))
            .hint("write type=image,name=REGISTRY/NAME:TAG[,push=true]")));
    }
    Some(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs() {
        assert_eq!(parse_output("type=docker,dest=a.tar").unwrap(), Output::DockerArchive("a.tar".into()));
        assert_eq!(parse_output("out").unwrap(), Output::LocalDir("out".into()));
        assert!(parse_output("type=zip,dest=x").is_err());
        assert!(parse_output("type=oci").is_err());
    }
}

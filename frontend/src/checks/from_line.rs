//! FROM lines: the global scope they expand in ([`Globals`]), and the rules
//! about it: UndefinedArgInFrom (a variable no global ARG declares),
//! InvalidDefaultArgInFrom (the image name the defaults alone give is no
//! valid reference), RedundantTargetPlatform (`--platform=$TARGETPLATFORM`)
//! and FromPlatformFlagConstDisallowed (`--platform=linux/amd64` in a
//! stage not named for it).

use std::collections::BTreeSet;

use super::config::CheckConfig;
use super::entries::{Entry, File};
use super::{CheckInput, Reporter, rules};
use crate::error::suggest;
use crate::instructions::Kind;
use crate::shell::{Env, Lexer};

/// The global scope: the platform args, TARGETSTAGE and the ARGs before the
/// first FROM.
pub(super) struct Globals {
    /// Values as the build sees them (`--build-arg` wins over a default).
    pub values: Vec<(String, String)>,
    /// Values from the defaults alone.
    pub defaults: Vec<(String, String)>,
    /// Every global name, with a value or not.
    pub names: BTreeSet<String>,
}

impl Globals {
    pub(super) fn new(file: &File<'_>, input: &CheckInput<'_>, lexer: &Lexer) -> Globals {
        let mut predefined = crate::lower::platform::platform_args(input.platform, input.platform);
        let target_stage = input
            .target
            .map(str::to_string)
            .or_else(|| file.stages.last().and_then(|s| s.name.clone()))
            .unwrap_or_else(|| "default".to_string());
        predefined.push(("TARGETSTAGE".to_string(), target_stage));
        let mut globals =
            Globals { values: predefined.clone(), defaults: predefined, names: BTreeSet::new() };
        globals.names.extend(globals.values.iter().map(|(k, _)| k.clone()));
        for entry in &file.globals {
            let Kind::Arg(decls) = &entry.instr.kind else { continue };
            for (name, default) in decls {
                globals.names.insert(name.text.clone());
                let expand = |env: &Vec<(String, String)>| {
                    default.as_ref().and_then(|d| lexer.process_word(&d.text, env).ok()).map(|e| e.value)
                };
                if let Some(value) = expand(&globals.defaults) {
                    globals.defaults.push((name.text.clone(), value));
                }
                let given = input.build_args.get(&name.text).cloned();
                if let Some(value) = given.or_else(|| expand(&globals.values)) {
                    globals.values.push((name.text.clone(), value));
                }
            }
        }
        globals
    }
}

/// InvalidDefaultArgInFrom, over every stage, with the file's settings.
pub(super) fn invalid_defaults(
    file: &File<'_>,
    globals: &Globals,
    lexer: &Lexer,
    config: &CheckConfig,
    reporter: &mut Reporter,
) {
    for stage in &file.stages {
        let Kind::From { image, .. } = &stage.from.instr.kind else { continue };
        // An expansion error is the build's to report, not the check's.
        let Ok(expanded) = lexer.process_word(&image.text, &globals.defaults) else { return };
        if !is_valid_reference(&expanded.value) {
            reporter.report(
                config,
                &rules::INVALID_DEFAULT_ARG_IN_FROM,
                stage.from.instr.span,
                format!("Default value for ARG {} results in empty or invalid base image name", image.text),
            );
        }
    }
}

/// UndefinedArgInFrom, RedundantTargetPlatform and
/// FromPlatformFlagConstDisallowed, over every stage.
pub(super) fn from_lines(
    file: &File<'_>,
    globals: &Globals,
    lexer: &Lexer,
    input: &CheckInput<'_>,
    reporter: &mut Reporter,
) {
    for stage in &file.stages {
        let entry = &stage.from;
        let Kind::From { image, platform, .. } = &entry.instr.kind else { continue };
        if let Ok(expanded) = lexer.process_word(&image.text, &globals.values) {
            undeclared(entry, &expanded.unmatched, globals, reporter);
        }
        let Some(platform) = platform else { continue };
        let Ok(expanded) = lexer.process_word(&platform.text, &globals.values) else { continue };
        undeclared(entry, &expanded.unmatched, globals, reporter);
        let only_target_platform = expanded.unmatched.is_empty()
            && expanded.matched.len() == 1
            && expanded.matched.contains("TARGETPLATFORM");
        if only_target_platform && globals.values.lookup("TARGETPLATFORM") == Some(expanded.value.as_str()) {
            reporter.report(
                &entry.config,
                &rules::REDUNDANT_TARGET_PLATFORM,
                entry.instr.span,
                format!(
                    "Setting platform to predefined {} in FROM is redundant as this is the default behavior",
                    platform.text
                ),
            );
        }
        let constant = expanded.matched.is_empty() && expanded.unmatched.is_empty();
        if constant
            && let Some((os, arch)) = os_and_arch(&expanded.value, input.platform.architecture.as_str())
        {
            let name = stage.name.as_deref().unwrap_or_default();
            if !name.contains(os) && !name.contains(arch) {
                reporter.report(
                    &entry.config,
                    &rules::FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                    entry.instr.span,
                    format!("FROM --platform flag should not use constant value {:?}", expanded.value),
                );
            }
        }
    }
}

fn undeclared(entry: &Entry<'_>, unmatched: &BTreeSet<String>, globals: &Globals, reporter: &mut Reporter) {
    for name in unmatched.iter().filter(|n| !globals.names.contains(*n)) {
        let hint = suggest(name, globals.names.iter().map(String::as_str))
            .map(|near| format!(" (did you mean {near}?)"))
            .unwrap_or_default();
        reporter.report(
            &entry.config,
            &rules::UNDEFINED_ARG_IN_FROM,
            entry.instr.span,
            format!("FROM argument '{name}' is not declared{hint}"),
        );
    }
}

/// The OS and architecture of a platform string, when it is one
/// (`linux`, `linux/amd64`, `linux/arm64/v8`); a lone OS takes the host's
/// architecture, as containerd's parser does.
fn os_and_arch<'a>(platform: &'a str, host_arch: &'a str) -> Option<(&'a str, &'a str)> {
    let parts: Vec<&str> = platform.split('/').collect();
    let valid = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if parts.len() > 3 || !parts.iter().all(valid) {
        return None;
    }
    Some((parts[0], parts.get(1).copied().unwrap_or(host_arch)))
}

/// Whether `reference` is a valid image reference as Docker normalises
/// them: `[domain[:port]/]path[:tag][@algorithm:hex]`, path components in
/// lower case.
fn is_valid_reference(reference: &str) -> bool {
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((head, digest)) => (head, Some(digest)),
        None => (reference, None),
    };
    if digest.is_some_and(|d| !is_valid_digest(d)) {
        return false;
    }
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(i) => (&name_and_tag[..last_slash + i], Some(&name_and_tag[last_slash + i + 1..])),
        None => (name_and_tag, None),
    };
    if tag.is_some_and(|t| !is_valid_tag(t)) {
        return false;
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && is_domain(components[0]) {
        components.remove(0);
    }
    !name.is_empty() && components.iter().all(|c| is_path_component(c))
}

fn is_domain(first: &str) -> bool {
    (first.contains('.') || first.contains(':') || first == "localhost")
        && first.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        if !(separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-'))
        {
            return false;
        }
    }
    true
}

fn is_valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

fn is_valid_digest(digest: &str) -> bool {
    digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
            && hex.len() >= 32
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_validated_as_docker_does() {
        for good in [
            "busybox",
            "busybox:latest",
            "localhost:5000/a/b:v1",
            "ghcr.io/x/y-z__w",
            "scratch",
            "a@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_valid_reference(good), "{good}");
        }
        for bad in ["", "busybox:", ":latest", "Busybox", "busy box", "a//b", "a:-x", "a@sha256:zz"] {
            assert!(!is_valid_reference(bad), "{bad}");
        }
    }

    #[test]
    fn platform_strings_give_os_and_arch() {
        assert_eq!(os_and_arch("linux/arm64/v8", "amd64"), Some(("linux", "arm64")));
        assert_eq!(os_and_arch("linux", "amd64"), Some(("linux", "amd64")));
        assert_eq!(os_and_arch("linux/", "amd64"), None);
    }
}

//! Which checks run and whether they fail the build: the `# check=`
//! directive (`skip=Rule1,Rule2`, `skip=all`, `error=true`,
//! `experimental=Rule|all`, separated by `;`), the `BUILDKIT_DOCKERFILE_CHECK`
//! build arg that replaces it, and `# check=` comments right above one
//! instruction, which add to the file's settings for that instruction only.

use std::collections::BTreeSet;

use super::rules::Rule;

/// The settings of one check run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: BTreeSet<String>,
    pub experimental_all: bool,
    pub experimental: BTreeSet<String>,
    /// `error=true`: a violation fails the build before any step runs.
    pub error: bool,
}

impl CheckConfig {
    /// Parses a `# check=` value such as `skip=JSONArgsRecommended;error=true`.
    pub fn parse(value: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        let value = value.trim();
        if value.is_empty() {
            return Ok(config);
        }
        // BuildKit reads at most three options; a fourth `;` stays inside the third.
        for option in value.splitn(3, ';') {
            let Some((key, v)) = option.split_once('=') else {
                return Err(format!(
                    "invalid check option {option:?}: expected skip=…, error=… or experimental=…"
                ));
            };
            let v = v.trim();
            match key.trim() {
                "skip" => list_option(v, &mut config.skip_all, &mut config.skip),
                "experimental" => list_option(v, &mut config.experimental_all, &mut config.experimental),
                "error" => {
                    config.error = parse_go_bool(v).ok_or_else(|| {
                        format!("invalid check option {option:?}: error= takes true or false")
                    })?;
                }
                other => {
                    return Err(format!(
                        "invalid check option {other:?}: the options are skip, error and experimental"
                    ));
                }
            }
        }
        Ok(config)
    }

    /// The settings of a build: the `BUILDKIT_DOCKERFILE_CHECK` build arg
    /// when given (it replaces the directive, as in BuildKit), else the
    /// `# check=` directive, else the defaults.
    pub fn for_build(directive: Option<&str>, build_arg: Option<&str>) -> Result<CheckConfig, String> {
        build_arg.or(directive).map_or_else(|| Ok(CheckConfig::default()), CheckConfig::parse)
    }

    /// Whether `rule` runs under these settings. Experimental rules run only
    /// when asked for, whatever `skip` says; the others unless skipped.
    pub fn enabled(&self, rule: &Rule) -> bool {
        if rule.experimental {
            self.experimental_all || self.experimental.contains(rule.name)
        } else {
            !(self.skip_all || self.skip.contains(rule.name))
        }
    }

    /// These settings with those of a `# check=` comment directly above an
    /// instruction added (skips and experimental rules join, `error` can only
    /// be turned on). The first comment that is a `check=` line counts; text
    /// after a blank in its value is a remark (`skip=all // why`). A comment
    /// whose options do not parse changes nothing.
    pub fn with_comments(&self, comments: &[String]) -> CheckConfig {
        let Some(value) = comments.iter().find_map(|c| check_comment_value(c)) else {
            return self.clone();
        };
        let options = value.split(' ').next().unwrap_or_default();
        let Ok(local) = CheckConfig::parse(options) else {
            return self.clone();
        };
        let mut merged = self.clone();
        merged.skip_all |= local.skip_all;
        merged.skip.extend(local.skip);
        merged.experimental_all |= local.experimental_all;
        merged.experimental.extend(local.experimental);
        merged.error |= local.error;
        merged
    }
}

/// `all`, or a comma-separated list of rule names.
fn list_option(value: &str, all: &mut bool, names: &mut BTreeSet<String>) {
    if value == "all" {
        *all = true;
    } else {
        names.extend(value.split(',').map(|name| name.trim().to_string()));
    }
}

/// Go's `strconv.ParseBool`, which BuildKit uses for `error=`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The value of a comment that reads `check=VALUE` (the comment text comes
/// without its `#`), the name in any case.
fn check_comment_value(comment: &str) -> Option<&str> {
    let (name, value) = comment.split_once('=')?;
    let value = value.trim();
    (name.trim().eq_ignore_ascii_case("check") && !value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules;

    #[test]
    fn parses_skip_lists_error_and_experimental() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended, FromAsCasing;error=true").unwrap();
        assert_eq!(c.skip, BTreeSet::from(["JSONArgsRecommended".into(), "FromAsCasing".into()]));
        assert!(c.error && !c.skip_all);
        assert!(!c.enabled(&rules::FROM_AS_CASING));
        assert!(c.enabled(&rules::STAGE_NAME_CASING));
        let all = CheckConfig::parse("skip=all").unwrap();
        assert!(!all.enabled(&rules::UNDEFINED_VAR));
        assert!(
            !all.enabled(&rules::INVALID_DEFINITION_DESCRIPTION),
            "experimental rules are off by default"
        );
        let exp = CheckConfig::parse("skip=all;experimental=InvalidDefinitionDescription").unwrap();
        assert!(
            exp.enabled(&rules::INVALID_DEFINITION_DESCRIPTION),
            "skip=all does not turn off an asked-for experimental rule"
        );
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
    }

    #[test]
    fn bad_options_are_errors() {
        assert!(CheckConfig::parse("skip").unwrap_err().contains("invalid check option \"skip\""));
        assert!(CheckConfig::parse("error=maybe").unwrap_err().contains("error= takes true or false"));
        assert!(CheckConfig::parse("warn=all").unwrap_err().contains("\"warn\""));
    }

    #[test]
    fn the_build_arg_replaces_the_directive() {
        let c = CheckConfig::for_build(Some("error=true"), Some("skip=all")).unwrap();
        assert!(c.skip_all && !c.error);
        let c = CheckConfig::for_build(Some("error=true"), None).unwrap();
        assert!(c.error);
    }

    #[test]
    fn a_comment_above_an_instruction_adds_to_the_settings() {
        let base = CheckConfig::parse("skip=FromAsCasing").unwrap();
        let local = base
            .with_comments(&["allow it".into(), "check=skip=SecretsUsedInArgOrEnv // allow secret".into()]);
        assert!(!local.enabled(&rules::SECRETS_USED_IN_ARG_OR_ENV));
        assert!(!local.enabled(&rules::FROM_AS_CASING));
        assert!(base.enabled(&rules::SECRETS_USED_IN_ARG_OR_ENV), "the file's settings are unchanged");
        assert_eq!(base.with_comments(&["check=bogus".into()]), base);
    }
}

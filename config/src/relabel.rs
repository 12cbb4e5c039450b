//! `<relabel_config>`: building validated rules from YAML.
//!
//! The rule types and their application live in `ember_model::relabel` (and
//! are re-exported here); this module applies Prometheus's defaults and
//! per-action validation rules, with its error messages.

pub use ember_model::relabel::{
    DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR, RelabelAction, RelabelConfig,
    RelabelRegex,
};
use regex::Regex;

use crate::names::ValidationScheme;
use crate::raw::RawRelabelConfig;

/// The `action` of a relabel step that calls a relabeler plugin (Ember).
pub const PLUGIN_ACTION: &str = "plugin";

/// One step of a scrape config's `relabel_configs` or `metric_relabel_configs`: a
/// built-in rule, or (Ember) a call to a relabeler plugin with the whole batch of label
/// sets at that point of the pipeline.
///
/// ```yaml
/// metric_relabel_configs:
///   - source_labels: [__name__]
///     regex: go_.*
///     action: drop
///   - action: plugin
///     plugin: hash-pii
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum RelabelStep {
    /// A built-in rule, applied by `ember_model::relabel`.
    Rule(RelabelConfig),
    /// `action: plugin`: the declared relabeler plugin of this name.
    Plugin(String),
}

impl RelabelStep {
    /// The built-in rule, when this step is one.
    pub fn rule(&self) -> Option<&RelabelConfig> {
        match self {
            RelabelStep::Rule(rule) => Some(rule),
            RelabelStep::Plugin(_) => None,
        }
    }

    /// The plugin's name, when this step calls one.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            RelabelStep::Rule(_) => None,
            RelabelStep::Plugin(name) => Some(name),
        }
    }
}

/// The built-in rules of `steps` when no step calls a plugin, so that callers keep
/// the plain rule path for the common case.
pub fn rules_only(steps: &[RelabelStep]) -> Option<Vec<RelabelConfig>> {
    steps.iter().map(|step| step.rule().cloned()).collect()
}

/// A relabel rule that Prometheus would reject; `field` is the offending key, if one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleError {
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
}

fn rule_error(field: Option<&'static str>, message: impl Into<String>) -> RuleError {
    RuleError {
        field,
        message: message.into(),
    }
}

/// The value of a relabel string field: `default` when absent, `""` when written as
/// null (Prometheus's zero value), the text otherwise.
fn explicit_or<'a>(field: &'a Option<Option<String>>, default: &'a str) -> &'a str {
    match field {
        None => default,
        Some(None) => "",
        Some(Some(text)) => text,
    }
}

/// A one-line description of why `original` does not compile.
///
/// `regex` renders parse errors over several lines, quoting the pattern it compiled,
/// which here is the anchored wrapper rather than what the user wrote. Compiling the
/// original alone yields an error about the user's text; its last line names the problem.
fn regex_error_summary(original: &str, anchored_error: &regex::Error) -> String {
    let error = Regex::new(original)
        .err()
        .unwrap_or_else(|| anchored_error.clone());
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// Whether a `replace` target or `labelmap` replacement refers to a capture group.
fn has_template_variable(text: &str) -> bool {
    text.contains('$')
}

/// Prometheus's legacy-scheme rule for a label name that may contain `$1` / `${name}`.
fn is_legacy_name_with_variables(text: &str) -> bool {
    // `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$` from Prometheus's relabel package.
    static PATTERN: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").ok())
        .as_ref()
        .is_some_and(|pattern| pattern.is_match(text))
}

fn is_valid_name_with_variables(scheme: ValidationScheme, text: &str) -> bool {
    match scheme {
        ValidationScheme::Utf8 => scheme.is_valid_label_name(text),
        ValidationScheme::Legacy => is_legacy_name_with_variables(text),
    }
}

/// Applies defaults and Prometheus's per-action rules to one raw rule.
pub(crate) fn relabel_from_raw(
    raw: &RawRelabelConfig,
    scheme: ValidationScheme,
) -> Result<RelabelConfig, RuleError> {
    if raw.plugin.is_some() {
        return Err(rule_error(
            Some("plugin"),
            "'plugin' is only allowed with action 'plugin'",
        ));
    }
    let action = match raw.action.as_deref() {
        None => RelabelAction::Replace,
        Some("") => return Err(rule_error(Some("action"), "relabel action cannot be empty")),
        Some(text) => RelabelAction::from_config(text).ok_or_else(|| {
            let known: Vec<&str> = RelabelAction::ALL.iter().map(|a| a.as_str()).collect();
            rule_error(
                Some("action"),
                format!(
                    "unknown relabel action {text:?}, expected one of {}",
                    known.join(", ")
                ),
            )
        })?,
    };
    let source_labels = raw.source_labels.clone().unwrap_or_default();
    for name in &source_labels {
        if !scheme.is_valid_label_name(name) {
            return Err(rule_error(
                Some("source_labels"),
                format!("{name:?} is not a valid label name"),
            ));
        }
    }
    let regex_text = explicit_or(&raw.regex, DEFAULT_REGEX);
    let regex = RelabelRegex::new(regex_text).map_err(|error| {
        rule_error(
            Some("regex"),
            format!(
                "invalid regex {regex_text:?}: {}",
                regex_error_summary(regex_text, &error)
            ),
        )
    })?;
    let config = RelabelConfig {
        source_labels,
        separator: explicit_or(&raw.separator, DEFAULT_SEPARATOR).to_owned(),
        target_label: raw.target_label.clone().unwrap_or_default(),
        regex,
        modulus: raw.modulus.unwrap_or(0),
        replacement: explicit_or(&raw.replacement, DEFAULT_REPLACEMENT).to_owned(),
        action,
    };
    check(&config, raw, scheme)?;
    Ok(config)
}

/// Prometheus's `relabel.Config.Validate`, rule by rule and with its messages.
fn check(
    config: &RelabelConfig,
    raw: &RawRelabelConfig,
    scheme: ValidationScheme,
) -> Result<(), RuleError> {
    use RelabelAction::*;
    let action = config.action;
    let target = config.target_label.as_str();
    if action == HashMod && config.modulus == 0 {
        return Err(rule_error(
            Some("modulus"),
            "relabel configuration for hashmod requires non-zero modulus",
        ));
    }
    let writes_target = matches!(
        action,
        Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
    );
    if writes_target && target.is_empty() {
        return Err(rule_error(
            Some("target_label"),
            format!("relabel configuration for {action} action requires 'target_label' value"),
        ));
    }
    let invalid_target = || {
        rule_error(
            Some("target_label"),
            format!("{target:?} is invalid 'target_label' for {action} action"),
        )
    };
    if action == Replace {
        let valid = if has_template_variable(target) {
            is_valid_name_with_variables(scheme, target)
        } else {
            scheme.is_valid_label_name(target)
        };
        if !valid {
            return Err(invalid_target());
        }
    }
    if matches!(
        action,
        Lowercase | Uppercase | KeepEqual | DropEqual | HashMod
    ) && !scheme.is_valid_label_name(target)
    {
        return Err(invalid_target());
    }
    if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
        && config.replacement != DEFAULT_REPLACEMENT
    {
        return Err(rule_error(
            Some("replacement"),
            format!("'replacement' can not be set for {action} action"),
        ));
    }
    if action == LabelMap && !is_valid_name_with_variables(scheme, &config.replacement) {
        return Err(rule_error(
            Some("replacement"),
            format!(
                "{:?} is invalid 'replacement' for {action} action",
                config.replacement
            ),
        ));
    }
    if matches!(action, KeepEqual | DropEqual) {
        let offending = [
            ("regex", config.regex.as_str() != DEFAULT_REGEX),
            ("modulus", config.modulus != 0),
            ("separator", config.separator != DEFAULT_SEPARATOR),
            ("replacement", config.replacement != DEFAULT_REPLACEMENT),
        ]
        .into_iter()
        .find(|(_, changed)| *changed);
        if let Some((field, _)) = offending {
            return Err(rule_error(
                Some(field),
                format!(
                    "{action} action requires only 'source_labels' and `target_label`, and no other fields"
                ),
            ));
        }
    }
    if matches!(action, LabelDrop | LabelKeep) {
        let offending = [
            ("source_labels", raw.source_labels.is_some()),
            ("target_label", !target.is_empty()),
            ("modulus", config.modulus != 0),
            ("separator", config.separator != DEFAULT_SEPARATOR),
            ("replacement", config.replacement != DEFAULT_REPLACEMENT),
        ]
        .into_iter()
        .find(|(_, present)| *present);
        if let Some((field, _)) = offending {
            return Err(rule_error(
                Some(field),
                format!("{action} action requires only 'regex', and no other fields"),
            ));
        }
    }
    Ok(())
}

/// A step with `action: plugin`: the plugin's name, with no rule field beside it.
/// `None` when the step is not a plugin step.
pub(crate) fn plugin_step_from_raw(raw: &RawRelabelConfig) -> Option<Result<String, RuleError>> {
    if raw.action.as_deref() != Some(PLUGIN_ACTION) {
        return None;
    }
    let offending = [
        ("source_labels", raw.source_labels.is_some()),
        ("separator", raw.separator.is_some()),
        ("target_label", raw.target_label.is_some()),
        ("regex", raw.regex.is_some()),
        ("modulus", raw.modulus.is_some()),
        ("replacement", raw.replacement.is_some()),
    ]
    .into_iter()
    .find(|(_, present)| *present);
    if let Some((field, _)) = offending {
        return Some(Err(rule_error(
            Some(field),
            "plugin action requires only 'plugin', and no other fields",
        )));
    }
    Some(match raw.plugin.as_deref() {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(rule_error(
            Some("plugin"),
            "relabel configuration for plugin action requires 'plugin': the name of a declared relabeler plugin",
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml_like: &[(&str, &str)]) -> RawRelabelConfig {
        let mut raw = RawRelabelConfig::default();
        for (key, value) in yaml_like {
            let value = (*value).to_owned();
            match *key {
                "source_labels" => {
                    raw.source_labels = Some(value.split(',').map(str::to_owned).collect())
                }
                "separator" => raw.separator = Some(Some(value)),
                "target_label" => raw.target_label = Some(value),
                "regex" => raw.regex = Some(Some(value)),
                "modulus" => raw.modulus = value.parse().ok(),
                "replacement" => raw.replacement = Some(Some(value)),
                "action" => raw.action = Some(value),
                other => panic!("unknown key {other}"),
            }
        }
        raw
    }

    /// A rule written as `(key, value)` pairs.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn check(pairs: &[(&str, &str)]) -> Result<RelabelConfig, RuleError> {
        relabel_from_raw(&rule(pairs), ValidationScheme::Utf8)
    }

    #[test]
    fn applies_documented_defaults() {
        let config = check(&[("target_label", "x")]).expect("valid");
        assert_eq!(config.action, RelabelAction::Replace);
        assert_eq!(config.separator, ";");
        assert_eq!(config.regex.as_str(), "(.*)");
        assert_eq!(config.replacement, "$1");
        assert_eq!(config.modulus, 0);
        assert!(config.source_labels.is_empty());
    }

    #[test]
    fn regexes_are_fully_anchored_and_dot_matches_newline() {
        let regex = RelabelRegex::new("a.c|x").expect("valid");
        assert!(regex.is_match("abc"));
        assert!(regex.is_match("a\nc"));
        assert!(regex.is_match("x"));
        assert!(!regex.is_match("xabc"));
        assert!(!regex.is_match("abcx"));
        assert_eq!(regex.to_string(), "a.c|x");
        assert!(RelabelRegex::new("(").is_err());
    }

    #[test]
    fn actions_are_case_insensitive() {
        assert_eq!(
            RelabelAction::from_config("LabelMap"),
            Some(RelabelAction::LabelMap)
        );
        assert_eq!(
            RelabelAction::from_config("HASHMOD"),
            Some(RelabelAction::HashMod)
        );
        assert_eq!(RelabelAction::from_config("nope"), None);
    }

    #[test]
    fn enforces_per_action_rules() {
        let cases: &[(Pairs<'_>, Option<&str>)] = &[
            (
                &[("action", "hashmod"), ("target_label", "x")],
                Some("modulus"),
            ),
            (
                &[
                    ("action", "hashmod"),
                    ("target_label", "x"),
                    ("modulus", "8"),
                ],
                None,
            ),
            (&[("action", "replace")], Some("target_label")),
            (
                &[
                    ("action", "lowercase"),
                    ("target_label", "x"),
                    ("replacement", "y"),
                ],
                Some("replacement"),
            ),
            (&[("action", "keepequal"), ("target_label", "x")], None),
            (&[("action", "keepequal")], Some("target_label")),
            (
                &[
                    ("action", "dropequal"),
                    ("target_label", "x"),
                    ("regex", "a"),
                ],
                Some("regex"),
            ),
            (
                &[
                    ("action", "keepequal"),
                    ("target_label", "x"),
                    ("separator", ";"),
                ],
                None,
            ),
            (&[("action", "labeldrop"), ("regex", "tmp_.*")], None),
            (
                &[("action", "labeldrop"), ("source_labels", "a")],
                Some("source_labels"),
            ),
            (
                &[("action", "labelkeep"), ("target_label", "a")],
                Some("target_label"),
            ),
            (
                &[("action", "labelkeep"), ("replacement", "z")],
                Some("replacement"),
            ),
            (&[("action", "labelmap"), ("regex", "__meta_(.+)")], None),
            (&[("action", "keep"), ("source_labels", "a")], None),
            (&[("action", "explode")], Some("action")),
            (&[("action", "")], Some("action")),
            (&[("target_label", "x"), ("regex", "(")], Some("regex")),
        ];
        for (pairs, expected_field) in cases {
            let result = check(pairs);
            assert_eq!(
                result.as_ref().err().and_then(|e| e.field),
                *expected_field,
                "{pairs:?}: {result:?}"
            );
            if expected_field.is_some() {
                assert!(result.is_err(), "{pairs:?}");
            }
        }
    }

    #[test]
    fn target_labels_follow_the_validation_scheme() {
        let legacy =
            |pairs: &[(&str, &str)]| relabel_from_raw(&rule(pairs), ValidationScheme::Legacy);
        assert!(check(&[("target_label", "app.io/name")]).is_ok());
        assert!(legacy(&[("target_label", "app.io/name")]).is_err());
        assert!(legacy(&[("target_label", "${1}_x")]).is_ok());
        assert!(legacy(&[("target_label", "$1")]).is_ok());
        assert!(legacy(&[("target_label", "$1-x")]).is_err());
        assert!(legacy(&[("action", "labelmap"), ("replacement", "a-$1")]).is_err());
        assert!(
            legacy(&[
                ("action", "hashmod"),
                ("target_label", "$1"),
                ("modulus", "2")
            ])
            .is_err()
        );
    }
}

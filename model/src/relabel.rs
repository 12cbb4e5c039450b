//! Relabeling: the eleven actions of `<relabel_config>` and how they apply.
//!
//! A [`RelabelConfig`] is one validated rule with every default filled in
//! (the configuration crate builds them from YAML and enforces
//! Prometheus's per-action rules); [`process`] applies a list of rules to a
//! [`LabelsBuilder`] with Prometheus's semantics to the letter. Target,
//! metric, alert and write relabeling all run through it.
//!
//! ```
//! use ember_model::labels::{Labels, LabelsBuilder};
//! use ember_model::relabel::{RelabelAction, RelabelConfig, RelabelRegex, process};
//!
//! let rule = RelabelConfig {
//!     source_labels: vec!["__address__".into()],
//!     separator: ";".into(),
//!     target_label: "host".into(),
//!     regex: RelabelRegex::new("([^:]+):.*").unwrap(),
//!     modulus: 0,
//!     replacement: "$1".into(),
//!     action: RelabelAction::Replace,
//! };
//! let mut builder = LabelsBuilder::new(Labels::new([("__address__", "db1:9100")]).unwrap());
//! assert!(process(&mut builder, &[rule]));
//! assert_eq!(builder.get("host"), Some("db1"));
//! ```

use std::fmt;

use md5::{Digest, Md5};
use regex::Regex;

use crate::labels::{Labels, LabelsBuilder};

/// Default `separator`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Default `regex`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// Default `replacement`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a relabelling step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelabelAction {
    /// Set `target_label` to `replacement` (with capture groups) when `regex` matches.
    Replace,
    /// Drop the target or series unless `regex` matches.
    Keep,
    /// Drop the target or series when `regex` matches.
    Drop,
    /// Drop unless the joined source labels equal the value of `target_label`.
    KeepEqual,
    /// Drop when the joined source labels equal the value of `target_label`.
    DropEqual,
    /// Set `target_label` to a hash of the joined source labels modulo `modulus`.
    HashMod,
    /// Copy labels whose names match `regex` to names built from `replacement`.
    LabelMap,
    /// Remove labels whose names match `regex`.
    LabelDrop,
    /// Remove labels whose names do not match `regex`.
    LabelKeep,
    /// Set `target_label` to the joined source labels in lower case.
    Lowercase,
    /// Set `target_label` to the joined source labels in upper case.
    Uppercase,
}

impl RelabelAction {
    /// Every action, in the order of the documentation.
    pub const ALL: [Self; 11] = [
        Self::Replace,
        Self::Keep,
        Self::Drop,
        Self::KeepEqual,
        Self::DropEqual,
        Self::HashMod,
        Self::LabelMap,
        Self::LabelDrop,
        Self::LabelKeep,
        Self::Lowercase,
        Self::Uppercase,
    ];

    /// Parses an action; like Prometheus, the spelling is case-insensitive.
    pub fn from_config(text: &str) -> Option<Self> {
        let lower = text.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == lower)
    }

    /// The canonical (lower-case) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for RelabelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A relabelling regex: RE2 syntax, anchored at both ends like Prometheus's.
///
/// Prometheus compiles `^(?s:<regex>)$`: the expression must match the whole value, and
/// `.` also matches a newline. The text as written is kept for display and equality.
#[derive(Clone)]
pub struct RelabelRegex {
    original: String,
    compiled: Regex,
}

impl RelabelRegex {
    /// Compiles `original` anchored at both ends.
    ///
    /// ```
    /// let regex = ember_model::relabel::RelabelRegex::new("foo|bar").unwrap();
    /// assert!(regex.is_match("bar"));
    /// assert!(!regex.is_match("foobar"));
    /// assert_eq!(regex.as_str(), "foo|bar");
    /// ```
    pub fn new(original: &str) -> Result<Self, regex::Error> {
        let compiled = Regex::new(&format!("^(?s:{original})$"))?;
        Ok(Self {
            original: original.to_owned(),
            compiled,
        })
    }

    /// The regex as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The anchored, compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.compiled
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.original == other.original
    }
}

impl Eq for RelabelRegex {}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RelabelRegex").field(&self.original).finish()
    }
}

impl fmt::Display for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// A validated relabelling step with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` to form the input.
    pub source_labels: Vec<String>,
    /// Joins the source label values (default `;`).
    pub separator: String,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`, or compared
    /// by `keepequal` / `dropequal`. May contain `$1`-style references for `replace`.
    pub target_label: String,
    /// Anchored regex (default `(.*)`).
    pub regex: RelabelRegex,
    /// Modulus for `hashmod` (0 when unused).
    pub modulus: u64,
    /// Replacement template (default `$1`).
    pub replacement: String,
    /// The action (default `replace`).
    pub action: RelabelAction,
}

/// Applies `rules` in order to `builder`. Returns `false` as soon as a rule
/// drops the label set; the builder then holds a partial result that must
/// not be used.
pub fn process(builder: &mut LabelsBuilder, rules: &[RelabelConfig]) -> bool {
    rules.iter().all(|rule| apply(builder, rule))
}

/// Applies `rules` to `labels`, returning the result or `None` if dropped.
pub fn process_labels(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels.clone());
    }
    let mut builder = LabelsBuilder::new(labels.clone());
    process(&mut builder, rules).then(|| builder.labels())
}

fn apply(builder: &mut LabelsBuilder, rule: &RelabelConfig) -> bool {
    let value = source_value(builder, rule);
    let regex = rule.regex.regex();
    match rule.action {
        RelabelAction::Drop => return !regex.is_match(&value),
        RelabelAction::Keep => return regex.is_match(&value),
        RelabelAction::DropEqual => {
            return builder.get(&rule.target_label).unwrap_or_default() != value;
        }
        RelabelAction::KeepEqual => {
            return builder.get(&rule.target_label).unwrap_or_default() == value;
        }
        RelabelAction::Replace => replace(builder, rule, &value),
        RelabelAction::Lowercase => {
            builder.set(&rule.target_label, &value.to_lowercase());
        }
        RelabelAction::Uppercase => {
            builder.set(&rule.target_label, &value.to_uppercase());
        }
        RelabelAction::HashMod => {
            // Prometheus takes the last eight bytes of the MD5 digest as a
            // big-endian integer; matching it keeps shard assignments stable
            // when a fleet moves from Prometheus to Ember.
            let digest = Md5::digest(value.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..]);
            let modulus = rule.modulus.max(1);
            builder.set(
                &rule.target_label,
                &(u64::from_be_bytes(tail) % modulus).to_string(),
            );
        }
        RelabelAction::LabelMap => {
            for (name, label_value) in snapshot(builder) {
                if regex.is_match(&name) {
                    let new_name = regex.replace_all(&name, rule.replacement.as_str());
                    builder.set(&new_name, &label_value);
                }
            }
        }
        RelabelAction::LabelDrop => {
            for (name, _) in snapshot(builder) {
                if regex.is_match(&name) {
                    builder.del(&name);
                }
            }
        }
        RelabelAction::LabelKeep => {
            for (name, _) in snapshot(builder) {
                if !regex.is_match(&name) {
                    builder.del(&name);
                }
            }
        }
    }
    true
}

/// The source labels' values joined by the separator; absent labels count
/// as empty strings, as in Prometheus.
fn source_value(builder: &LabelsBuilder, rule: &RelabelConfig) -> String {
    let mut value = String::new();
    for (i, name) in rule.source_labels.iter().enumerate() {
        if i > 0 {
            value.push_str(&rule.separator);
        }
        value.push_str(builder.get(name).unwrap_or_default());
    }
    value
}

fn replace(builder: &mut LabelsBuilder, rule: &RelabelConfig, value: &str) {
    // Prometheus's fast path: with the default regex and no `$` templates,
    // an empty source just sets the target to the replacement.
    if value.is_empty()
        && rule.regex.as_str() == DEFAULT_REGEX
        && !rule.target_label.contains('$')
        && !rule.replacement.contains('$')
    {
        builder.set(&rule.target_label, &rule.replacement);
        return;
    }
    let Some(captures) = rule.regex.regex().captures(value) else {
        return;
    };
    let mut target = String::new();
    captures.expand(&rule.target_label, &mut target);
    // An expansion that yields an empty name cannot be a label; Prometheus
    // skips the rule in that case rather than failing the whole set.
    if target.is_empty() {
        return;
    }
    let mut replacement = String::new();
    captures.expand(&rule.replacement, &mut replacement);
    if replacement.is_empty() {
        builder.del(&target);
    } else {
        builder.set(&target, &replacement);
    }
}

/// The builder's current labels, copied so rules can change the builder
/// while walking them (Prometheus's `Builder.Range` does the same).
fn snapshot(builder: &LabelsBuilder) -> Vec<(String, String)> {
    builder
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        action: RelabelAction,
        source: &[&str],
        regex: &str,
        target: &str,
        replacement: &str,
    ) -> RelabelConfig {
        RelabelConfig {
            source_labels: source.iter().map(|s| (*s).to_owned()).collect(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            target_label: target.to_owned(),
            regex: RelabelRegex::new(regex).unwrap(),
            modulus: 0,
            replacement: replacement.to_owned(),
            action,
        }
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let regex = RelabelRegex::new("a.c").unwrap();
        assert!(regex.is_match("a\nc"));
        assert!(!regex.is_match("xabc"));
    }

    #[test]
    fn a_dropping_rule_stops_processing() {
        let labels = Labels::new([("a", "1")]).unwrap();
        let drop = rule(RelabelAction::Drop, &["a"], "1", "", DEFAULT_REPLACEMENT);
        let set = rule(RelabelAction::Replace, &[], DEFAULT_REGEX, "b", "x");
        assert_eq!(process_labels(&labels, &[drop, set.clone()]), None);
        assert_eq!(
            process_labels(&labels, &[set]),
            Some(Labels::new([("a", "1"), ("b", "x")]).unwrap())
        );
    }
}

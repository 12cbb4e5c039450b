//! Relabeling: the eleven actions of `<relabel_config>`, with Prometheus's
//! semantics to the letter.
//!
//! Target relabeling, metric relabeling, alert relabeling and write
//! relabeling all run [`process`] over a [`LabelsBuilder`]. A rule list either
//! keeps the label set (possibly rewritten) or drops it. The rules themselves
//! are validated by `ember-config`; this module only applies them.
//!
//! ```
//! use ember_model::labels::{Labels, LabelsBuilder};
//! # let rules = Vec::new();
//! let mut builder = LabelsBuilder::new(Labels::new([("__address__", "host:9100")]).unwrap());
//! let kept = ember_host::relabel::process(&mut builder, &rules);
//! assert!(kept);
//! ```

use ember_config::{RelabelAction, RelabelConfig};
use ember_model::labels::{Labels, LabelsBuilder};
use md5::{Digest, Md5};

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
        && rule.regex.as_str() == ember_config::relabel::DEFAULT_REGEX
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
mod tests;

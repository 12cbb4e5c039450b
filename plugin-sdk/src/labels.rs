//! Reading and editing label sets.

use crate::{Label, LabelSet};

/// Convenience methods on a [`LabelSet`].
///
/// Label sets are small (usually under 30 labels), so these scan linearly and
/// keep the order they find; the host sorts returned sets itself.
pub trait LabelSetExt {
    /// The value of the label `name`, if present.
    fn get(&self, name: &str) -> Option<&str>;
    /// Sets `name` to `value`, replacing an existing value. An empty value
    /// removes the label, as in Prometheus.
    fn set(&mut self, name: &str, value: impl Into<String>);
    /// Removes the label `name`, returning its value. (Named `unset` because
    /// `Vec::remove` takes an index.)
    fn unset(&mut self, name: &str) -> Option<String>;
}

impl LabelSetExt for LabelSet {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|label| label.name == name)
            .map(|label| label.value.as_str())
    }

    fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            self.unset(name);
            return;
        }
        match self.iter_mut().find(|label| label.name == name) {
            Some(label) => label.value = value,
            None => self.push(Label {
                name: name.to_owned(),
                value,
            }),
        }
    }

    fn unset(&mut self, name: &str) -> Option<String> {
        let index = self.iter().position(|label| label.name == name)?;
        Some(self.remove(index).value)
    }
}

/// Builds a label set from name/value pairs.
pub fn labels<N: Into<String>, V: Into<String>>(
    pairs: impl IntoIterator<Item = (N, V)>,
) -> LabelSet {
    pairs
        .into_iter()
        .map(|(name, value)| Label {
            name: name.into(),
            value: value.into(),
        })
        .collect()
}

/// Builds a label set sorted by name with unique names, as the host sends
/// them (a name set twice keeps the last value; an empty value removes the
/// label, as in Prometheus).
///
/// ```
/// use ember_plugin_sdk::LabelSetBuilder;
///
/// let set = LabelSetBuilder::new()
///     .label("job", "node")
///     .label("instance", "10.0.0.1:9100")
///     .label("job", "node-exporter")
///     .label("empty", "")
///     .build();
/// let names: Vec<_> = set.iter().map(|l| l.name.as_str()).collect();
/// assert_eq!(names, ["instance", "job"]);
/// assert_eq!(set[1].value, "node-exporter");
/// ```
#[derive(Debug, Clone, Default)]
pub struct LabelSetBuilder {
    labels: std::collections::BTreeMap<String, String>,
}

impl LabelSetBuilder {
    /// An empty set.
    pub fn new() -> LabelSetBuilder {
        LabelSetBuilder::default()
    }

    /// Sets `name` to `value`.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> LabelSetBuilder {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Sets every pair of `pairs`.
    pub fn labels<N: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> LabelSetBuilder {
        for (name, value) in pairs {
            self.labels.insert(name.into(), value.into());
        }
        self
    }

    /// The finished set.
    pub fn build(self) -> LabelSet {
        self.labels
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| Label { name, value })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_adds_and_removes_on_empty() {
        let mut set = labels([("a", "1"), ("b", "2")]);
        set.set("a", "x");
        set.set("c", "3");
        set.set("b", "");
        assert_eq!(set.get("a"), Some("x"));
        assert_eq!(set.get("b"), None);
        assert_eq!(set.get("c"), Some("3"));
        assert_eq!(set.len(), 2);
        assert_eq!(set.unset("c").as_deref(), Some("3"));
        assert_eq!(set.unset("c"), None);
    }
}

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

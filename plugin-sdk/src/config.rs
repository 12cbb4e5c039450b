//! The plugin's configuration, read through `wasi:config/store`.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::PluginError;
use crate::bindings::relabeler::wasi::config::store;

/// The plugin's configuration: the string map the operator wrote under the
/// plugin's `config:` key.
///
/// The SDK reads it once per instance and hands it to the plugin's `init`.
/// Accessors that can fail return [`PluginError::InvalidConfig`] with a message
/// naming the key, ready to be returned from `init`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: BTreeMap<String, String>,
}

impl Config {
    /// Reads the whole configuration from the host.
    pub fn load() -> Result<Config, PluginError> {
        let entries = store::get_all().map_err(|error| {
            let message = match error {
                store::Error::Upstream(message) | store::Error::Io(message) => message,
            };
            PluginError::Internal(format!("reading the configuration: {message}"))
        })?;
        Ok(Config::from_iter(entries))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The value of `key`, or an `invalid-config` error if it is not set.
    pub fn require(&self, key: &str) -> Result<&str, PluginError> {
        self.get(key)
            .ok_or_else(|| PluginError::InvalidConfig(format!("missing required key {key:?}")))
    }

    /// The value of `key` parsed as `T`, `None` if unset, or an
    /// `invalid-config` error if it does not parse.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, PluginError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|raw| {
                raw.parse().map_err(|error| {
                    PluginError::InvalidConfig(format!("key {key:?}: {raw:?}: {error}"))
                })
            })
            .transpose()
    }

    /// The value of `key` as a comma-separated list with blanks trimmed and
    /// empty items removed; empty when unset.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

impl FromIterator<(String, String)> for Config {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Config {
        Config {
            entries: entries.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn require_names_the_missing_key() {
        let error = config(&[]).require("labels").unwrap_err();
        assert!(matches!(error, PluginError::InvalidConfig(m) if m.contains("\"labels\"")));
    }

    #[test]
    fn list_trims_and_skips_empty_items() {
        assert_eq!(config(&[("l", " a, b,,c ")]).list("l"), ["a", "b", "c"]);
        assert!(config(&[]).list("l").is_empty());
    }

    #[test]
    fn parse_reports_bad_values() {
        let c = config(&[("n", "12"), ("bad", "x")]);
        assert_eq!(c.parse::<u32>("n").unwrap(), Some(12));
        assert_eq!(c.parse::<u32>("absent").unwrap(), None);
        assert!(matches!(
            c.parse::<u32>("bad"),
            Err(PluginError::InvalidConfig(_))
        ));
    }
}

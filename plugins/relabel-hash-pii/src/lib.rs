//! An Ember relabel plugin that pseudonymises personal data in labels.
//!
//! Every label named in the configuration has its value replaced by the first
//! `length` hexadecimal digits of `SHA-256(salt || value)`, so series stay
//! distinct and joinable without exposing the values (an email address, a
//! user id). Other labels pass through unchanged; nothing is dropped.
//!
//! Configuration (the plugin's `config:` map):
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `labels` | comma-separated label names to hash | required |
//! | `salt` | secret prefix; without one, common values can be guessed by hashing candidates | empty |
//! | `length` | hex digits kept, 8 to 64 | 16 |
//!
//! See `README.md` beside this crate for a complete `ember.yml` that loads
//! and uses it.

use ember_plugin_sdk::{Config, LabelSetMut, PluginError, Relabeler, export_relabeler};
use sha2::{Digest, Sha256};

/// The plugin: which labels to hash, and how.
pub struct HashPii {
    labels: Vec<String>,
    salt: Vec<u8>,
    length: usize,
}

impl HashPii {
    /// The pseudonym of one value.
    pub fn pseudonym(&self, value: &str) -> String {
        let digest = Sha256::new()
            .chain_update(&self.salt)
            .chain_update(value)
            .finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        hex.truncate(self.length);
        hex
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Relabeler for HashPii {
    fn init(config: &Config) -> Result<Self, PluginError> {
        let labels: Vec<String> = config
            .list("labels")
            .into_iter()
            .map(str::to_owned)
            .collect();
        if labels.is_empty() {
            return Err(PluginError::InvalidConfig(
                "\"labels\" must name at least one label to hash".to_owned(),
            ));
        }
        let length = config.parse::<usize>("length")?.unwrap_or(16);
        if !(8..=64).contains(&length) {
            return Err(PluginError::InvalidConfig(format!(
                "\"length\" must be between 8 and 64, not {length}"
            )));
        }
        let salt = config.get("salt").unwrap_or_default().as_bytes().to_vec();
        Ok(HashPii {
            labels,
            salt,
            length,
        })
    }

    fn relabel_one(&self, labels: &mut LabelSetMut<'_>) {
        for name in &self.labels {
            // An empty value means "no label": there is nothing to hash.
            if let Some(value) = labels.get(name).filter(|value| !value.is_empty()) {
                let pseudonym = self.pseudonym(value);
                labels.set(name, &pseudonym);
            }
        }
    }
}

export_relabeler!(HashPii);

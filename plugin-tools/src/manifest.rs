//! `ember-plugin.json`: what a plugin project is (name, kind, language,
//! where its contract and source are).
//!
//! ```json
//! {"name": "exporter-js-json", "kind": "exporter", "language": "js",
//!  "wit": "wit", "source": "app.js"}
//! ```
//!
//! `wit` and `source` are relative to the project and have per-language
//! defaults. A Rust project may have no manifest: its `Cargo.toml` says
//! enough (the world is compiled into the module by the SDK's macros).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ToolError;

/// The manifest's file name.
pub const FILE_NAME: &str = "ember-plugin.json";

/// A plugin kind: one world of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The `discovery` world: reports target groups.
    Discovery,
    /// The `exporter` world: collects metric families for a target.
    Exporter,
    /// The `relabeler` world: rewrites or drops label sets in batches.
    Relabeler,
    /// The `remote-storage` world: receives batches of series.
    RemoteStorage,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [
        Kind::Discovery,
        Kind::Exporter,
        Kind::Relabeler,
        Kind::RemoteStorage,
    ];

    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Discovery => "discovery",
            Kind::Exporter => "exporter",
            Kind::Relabeler => "relabeler",
            Kind::RemoteStorage => "remote-storage",
        }
    }

    /// The kind whose world exports the function `name`, if any; `init` is
    /// common to all and so names none.
    pub fn from_export(name: &str) -> Option<Kind> {
        match name {
            "refresh" => Some(Kind::Discovery),
            "collect" => Some(Kind::Exporter),
            "relabel" => Some(Kind::Relabeler),
            "write" | "read" => Some(Kind::RemoteStorage),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Language {
    /// Rust with `ember-plugin-sdk`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
    /// C, built with clang and `wit-bindgen`'s C bindings.
    C,
}

impl Language {
    /// The name used in messages and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
        }
    }

    /// The entry source file when the manifest names none.
    pub fn default_source(self) -> &'static str {
        match self {
            Language::Rust => "src/lib.rs",
            Language::Python => "app.py",
            Language::Js => "app.js",
            Language::C => "plugin.c",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A project's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: the output is `<name>.wasm`.
    pub name: String,
    /// Its world; optional for Rust, required otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Its language.
    pub language: Language,
    /// The contract's directory, relative to the project (default `wit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wit: Option<String>,
    /// The entry source file, relative to the project (default per
    /// language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Manifest {
    /// Reads `dir/ember-plugin.json`, or describes a Rust project from its
    /// `Cargo.toml` when there is no manifest.
    pub fn load(dir: &Path) -> Result<Manifest, ToolError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let manifest: Manifest =
                    serde_json::from_str(&text).map_err(|error| ToolError::Manifest {
                        path: path.clone(),
                        message: error.to_string(),
                    })?;
                if manifest.kind.is_none() && manifest.language != Language::Rust {
                    return Err(ToolError::Manifest {
                        path,
                        message: format!(
                            "\"kind\" is required for {} plugins (one of discovery, exporter, relabeler, remote-storage)",
                            manifest.language
                        ),
                    });
                }
                if !is_valid_name(&manifest.name) {
                    return Err(ToolError::Manifest {
                        path,
                        message: format!("\"name\" {:?}: {NAME_RULE}", manifest.name),
                    });
                }
                Ok(manifest)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let cargo = dir.join("Cargo.toml");
                let text = std::fs::read_to_string(&cargo).map_err(|_| ToolError::Manifest {
                    path: path.clone(),
                    message: format!(
                        "not found, and {} has no Cargo.toml either: not a plugin project",
                        dir.display()
                    ),
                })?;
                let name = cargo_package_name(&text).ok_or_else(|| ToolError::Manifest {
                    path: cargo.clone(),
                    message: "no [package] name".to_owned(),
                })?;
                Ok(Manifest {
                    name,
                    kind: None,
                    language: Language::Rust,
                    wit: None,
                    source: None,
                })
            }
            Err(source) => Err(ToolError::Io { path, source }),
        }
    }

    /// The contract's directory.
    pub fn wit_dir(&self, dir: &Path) -> PathBuf {
        dir.join(self.wit.as_deref().unwrap_or("wit"))
    }

    /// The entry source file.
    pub fn source_path(&self, dir: &Path) -> PathBuf {
        dir.join(
            self.source
                .as_deref()
                .unwrap_or(self.language.default_source()),
        )
    }
}

/// What a plugin name may look like.
pub const NAME_RULE: &str =
    "use 1 to 64 lower-case letters, digits and '-', starting with a letter";

/// Whether `name` follows [`NAME_RULE`]; names become file, crate and
/// package names, so they are kept plain.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The `name` of `[package]` in a Cargo.toml, read line by line (enough for
/// the manifests this tool writes and the usual hand-written ones).
fn cargo_package_name(text: &str) -> Option<String> {
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package
            && let Some(rest) = line.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_exports() {
        assert_eq!(Kind::from_export("collect"), Some(Kind::Exporter));
        assert_eq!(Kind::from_export("read"), Some(Kind::RemoteStorage));
        assert_eq!(Kind::from_export("init"), None);
    }

    #[test]
    fn manifests_round_trip_and_need_a_kind_outside_rust() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest {
            name: "probe".into(),
            kind: Some(Kind::RemoteStorage),
            language: Language::Js,
            wit: None,
            source: None,
        };
        std::fs::write(
            dir.path().join(FILE_NAME),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), manifest);
        std::fs::write(dir.path().join(FILE_NAME), r#"{"name":"p","language":"c"}"#).unwrap();
        let error = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("\"kind\" is required"), "{error}");
        std::fs::write(
            dir.path().join(FILE_NAME),
            r#"{"name":"p","language":"go"}"#,
        )
        .unwrap();
        assert!(Manifest::load(dir.path()).is_err());
    }

    #[test]
    fn rust_projects_need_no_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\n\n[package]\nname = \"my-plugin\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        let manifest = Manifest::load(dir.path()).unwrap();
        assert_eq!(manifest.name, "my-plugin");
        assert_eq!(manifest.language, Language::Rust);
        let empty = tempfile::tempdir().unwrap();
        assert!(
            Manifest::load(empty.path())
                .unwrap_err()
                .to_string()
                .contains("not a plugin project")
        );
    }

    #[test]
    fn names_are_plain() {
        assert!(is_valid_name("http-probe2"));
        for bad in ["", "2x", "Probe", "a_b", "a/b", &"a".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}

//! `ember plugin inspect`: what a plugin file is and what it will ask for.
//!
//! Reads a component, or a core module with an embedded component type (as
//! Rust guests built for `wasm32-unknown-unknown` are; it is componentized
//! in memory exactly as the server would), decodes its WIT and reports:
//! the kind (from its exports), the contract version (from its
//! `ember:plugin` imports), every import and export, the capabilities the
//! operator must grant for its imports to work, its size and its SHA-256
//! (the hash `/api/v1/plugins` shows as the source hash).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wit_parser::{Resolve, WorldItem, WorldKey};

use crate::build::{componentize, is_component};
use crate::{Kind, ToolError};

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file inspected.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Whether the file is a component (else a core module carrying a
    /// component type).
    pub component: bool,
    /// The plugin kind its exports match, if any.
    pub kind: Option<Kind>,
    /// The `ember:plugin` contract version it was built against.
    pub contract_version: Option<String>,
    /// Imported interfaces (`wasi:http/outgoing-handler@0.2.12`) and
    /// functions.
    pub imports: Vec<String>,
    /// Exported functions and interfaces.
    pub exports: Vec<String>,
    /// What the operator must grant for the imports to do anything.
    pub capabilities: Vec<Capability>,
}

/// One capability a plugin's imports ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capability {
    /// The import that asks for it.
    pub import: String,
    /// What it gives.
    pub what: &'static str,
    /// How it is granted: a `capabilities:` key, or why it never is.
    pub grant: &'static str,
}

/// The capability an import needs, or `None` for imports that are always
/// available (logging, configuration, clocks, random, streams, stdio).
fn capability_for(import: &str) -> Option<(&'static str, &'static str)> {
    let unversioned = import.split('@').next().unwrap_or(import);
    match unversioned {
        "wasi:http/outgoing-handler" => Some((
            "outgoing HTTP requests",
            "capabilities.allowed_hosts (host patterns; none by default)",
        )),
        "wasi:cli/environment" => Some((
            "environment variables",
            "capabilities.env (variable names; empty by default)",
        )),
        "wasi:filesystem/preopens" => Some((
            "files",
            "capabilities.read_only_dir (one directory, read-only; none by default)",
        )),
        name if name.starts_with("wasi:sockets/") => Some((
            "raw sockets",
            "never granted: calls fail (use wasi:http instead)",
        )),
        _ => None,
    }
}

/// Inspects the file at `path`.
pub fn inspect_file(path: &Path) -> Result<Report, ToolError> {
    let bytes = std::fs::read(path).map_err(ToolError::io(path))?;
    inspect_bytes(path, &bytes)
}

/// Inspects `bytes`, read from `path`.
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<Report, ToolError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ToolError::NotAPlugin {
            path: path.to_owned(),
            message: "not a WebAssembly file".to_owned(),
        });
    }
    let component = is_component(bytes);
    let component_bytes = componentize(bytes, path)?;
    let decoded =
        wit_component::decode(&component_bytes).map_err(|error| ToolError::NotAPlugin {
            path: path.to_owned(),
            message: format!("cannot decode its component type: {error:#}"),
        })?;
    let wit_parser::decoding::DecodedWasm::Component(resolve, world) = &decoded else {
        return Err(ToolError::NotAPlugin {
            path: path.to_owned(),
            message: "a WIT package, not a plugin component".to_owned(),
        });
    };
    let world = &resolve.worlds[*world];
    let imports: Vec<String> = world
        .imports
        .iter()
        .filter_map(|(key, item)| item_name(resolve, key, item))
        .collect();
    let exports: Vec<String> = world
        .exports
        .iter()
        .filter_map(|(key, item)| item_name(resolve, key, item))
        .collect();
    let kind = exports.iter().find_map(|name| Kind::from_export(name));
    let contract_version = imports
        .iter()
        .chain(&exports)
        .filter(|name| name.starts_with("ember:plugin/"))
        .find_map(|name| name.split_once('@').map(|(_, version)| version.to_owned()));
    let capabilities = imports
        .iter()
        .filter_map(|import| {
            capability_for(import).map(|(what, grant)| Capability {
                import: import.clone(),
                what,
                grant,
            })
        })
        .collect();
    Ok(Report {
        path: path.to_owned(),
        size: bytes.len() as u64,
        sha256: Sha256::digest(bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
        component,
        kind,
        contract_version,
        imports,
        exports,
        capabilities,
    })
}

/// An import's or export's name: the interface's full id
/// (`wasi:http/outgoing-handler@0.2.12`) or the function's name; `None` for
/// types, which a world lists beside the items that use them.
fn item_name(resolve: &Resolve, key: &WorldKey, item: &WorldItem) -> Option<String> {
    if matches!(item, WorldItem::Type { .. }) {
        return None;
    }
    Some(match key {
        WorldKey::Interface(id) => resolve
            .id_of(*id)
            .unwrap_or_else(|| resolve.name_world_key(key)),
        WorldKey::Name(name) => name.clone(),
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:     {}", self.path.display())?;
        writeln!(
            f,
            "format:   {}",
            if self.component {
                "component"
            } else {
                "core module with a component type (the server componentizes it when loading)"
            }
        )?;
        writeln!(f, "size:     {} bytes", self.size)?;
        writeln!(f, "sha256:   {}", self.sha256)?;
        match self.kind {
            Some(kind) => writeln!(f, "kind:     {kind} (world ember:plugin/{})", kind.world())?,
            None => writeln!(f, "kind:     unknown (exports match no plugin world)")?,
        }
        writeln!(
            f,
            "contract: {}",
            self.contract_version
                .as_deref()
                .map(|v| format!("ember:plugin@{v}"))
                .unwrap_or_else(|| "none (imports nothing from ember:plugin)".to_owned())
        )?;
        writeln!(f, "exports:  {}", self.exports.join(", "))?;
        writeln!(f, "imports:")?;
        for import in &self.imports {
            writeln!(f, "  {import}")?;
        }
        if self.capabilities.is_empty() {
            writeln!(
                f,
                "capabilities: none needed beyond the defaults (logging, config, clocks, random)"
            )?;
        } else {
            writeln!(f, "capabilities:")?;
            for capability in &self.capabilities {
                writeln!(
                    f,
                    "  {} ({}): {}",
                    capability.what, capability.import, capability.grant
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_named_for_the_imports_that_need_them() {
        assert!(
            capability_for("wasi:http/outgoing-handler@0.2.12")
                .unwrap()
                .1
                .contains("allowed_hosts")
        );
        assert!(
            capability_for("wasi:cli/environment@0.2.0")
                .unwrap()
                .1
                .contains("env")
        );
        assert!(
            capability_for("wasi:sockets/tcp@0.2.3")
                .unwrap()
                .1
                .starts_with("never")
        );
        assert_eq!(capability_for("wasi:logging/logging@0.1.0-draft"), None);
        assert_eq!(capability_for("wasi:clocks/monotonic-clock@0.2.12"), None);
    }

    #[test]
    fn junk_is_not_a_plugin() {
        let error = inspect_bytes(Path::new("x"), b"hello world").unwrap_err();
        assert!(
            error.to_string().contains("not a WebAssembly file"),
            "{error}"
        );
    }
}

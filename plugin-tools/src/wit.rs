//! The plugin contract (`wit/` at the repository root), compiled in.

use std::path::Path;

use crate::ToolError;

/// The contract's package version, as plugins carry it in their imports.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Every file of the contract: its path under `wit/` and its text.
pub const FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../wit/types.wit")),
    ("worlds.wit", include_str!("../../wit/worlds.wit")),
    (
        "deps/config/store.wit",
        include_str!("../../wit/deps/config/store.wit"),
    ),
    (
        "deps/logging/logging.wit",
        include_str!("../../wit/deps/logging/logging.wit"),
    ),
];

/// Writes the contract into `dir` (creating it), as `dir/types.wit`,
/// `dir/deps/...`.
pub fn write_to(dir: &Path) -> Result<(), ToolError> {
    for (name, text) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(ToolError::io(parent))?;
        }
        std::fs::write(&path, text).map_err(ToolError::io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_contract_has_the_stated_version_and_every_world() {
        let types = FILES.iter().find(|(n, _)| *n == "types.wit").unwrap().1;
        assert!(types.starts_with(&format!("package ember:plugin@{CONTRACT_VERSION};")));
        let worlds = FILES.iter().find(|(n, _)| *n == "worlds.wit").unwrap().1;
        for world in ["discovery", "exporter", "relabeler", "remote-storage"] {
            assert!(worlds.contains(&format!("world {world} {{")), "{world}");
        }
    }
}

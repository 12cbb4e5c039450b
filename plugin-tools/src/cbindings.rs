//! C guest bindings from `wit-bindgen`'s C generator, run in-process (no
//! `wit-bindgen` executable needed).

use std::path::Path;

use wit_bindgen_core::wit_parser::Resolve;

use crate::ToolError;

/// Writes `<world>.h`, `<world>.c` and `<world>_component_type.o` for
/// `world` of the WIT package in `wit_dir` into `out_dir`. Returns the
/// generated file names.
pub(crate) fn generate(
    wit_dir: &Path,
    world: &str,
    out_dir: &Path,
) -> Result<Vec<String>, ToolError> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .map_err(|error| ToolError::Wit(format!("{}: {error:#}", wit_dir.display())))?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .map_err(|error| ToolError::Wit(format!("world {world:?}: {error:#}")))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world_id, &mut files)
        .map_err(|error| ToolError::Wit(format!("generating C bindings: {error:#}")))?;
    std::fs::create_dir_all(out_dir).map_err(ToolError::io(out_dir))?;
    let mut names = Vec::new();
    for (name, contents) in files.iter() {
        let path = out_dir.join(name);
        std::fs::write(&path, contents).map_err(ToolError::io(&path))?;
        names.push(name.to_owned());
    }
    Ok(names)
}

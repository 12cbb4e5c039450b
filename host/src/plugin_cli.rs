//! `ember plugin new|build|inspect`: the plugin author's commands.
//!
//! The work is done by `ember-plugin-tools` (scaffold, build and
//! componentize, inspect), which `scripts/build-plugins.sh` also runs as
//! the stand-alone `ember-plugin`; this module only connects it to the
//! `ember` command line and its exit status.

use std::io::Write;

pub use ember_plugin_tools::cli::PluginCommand;

/// Runs one `ember plugin` subcommand. Results go to `out`, progress and
/// build tools' output to `err`; the error names what failed.
pub fn run(
    command: PluginCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ember_plugin_tools::ToolError> {
    ember_plugin_tools::cli::run(command, out, err)
}

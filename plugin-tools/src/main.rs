//! `ember-plugin`: the `ember plugin` commands without the server, for
//! build scripts (`scripts/build-plugins.sh`) that must not wait for the
//! server binary to build.

use std::process::ExitCode;

use clap::Parser;
use ember_plugin_tools::cli::{PluginCommand, run};

/// Write, build and inspect Ember's WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "ember-plugin", version)]
struct Cli {
    #[command(subcommand)]
    command: PluginCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command, &mut std::io::stdout(), &mut std::io::stderr()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ember-plugin: {error}");
            ExitCode::FAILURE
        }
    }
}

//! The `ember` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use ember_host::cli::{CheckCommand, Cli, Command};
use ember_host::version::BUILD_INFO;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("{}", BUILD_INFO.long_version());
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Check(CheckCommand::Config { files })) => {
            let valid = ember_host::check::check_config_files(
                &files,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            if valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Tsdb(command)) => {
            match ember_host::tsdb_cli::run(command, &mut std::io::stdout(), &mut std::io::stderr())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("ember tsdb: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Plugin(command)) => {
            match ember_host::plugin_cli::run(
                command,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("ember plugin: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            ember_host::logging::init(cli.server.log_level, cli.server.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("ember: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(ember_host::server::run(cli.server)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "Ember stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

//! The `plugin` subcommands, shared by `ember plugin` and `ember-plugin`.

use std::io::Write;
use std::path::PathBuf;

use crate::{Kind, Language, ToolError, build, inspect, scaffold};

/// `ember plugin ...`: write, build and inspect WebAssembly plugins.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PluginCommand {
    /// Create a plugin project that builds as it is.
    New {
        /// The plugin's name (lower case, digits and '-'); also the
        /// directory created unless --dir is given.
        name: String,
        /// Which world the plugin implements.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Language,
        /// Where to create the project (default: ./<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// For Rust: the ember-plugin-sdk to depend on, as a path (default:
        /// the SDK in the Ember source tree this binary was built from, if
        /// it is still there).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Build a plugin project into a component (<name>.wasm).
    Build {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write <name>.wasm (default: <dir>/target).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Where intermediate files go (default: <dir>/target).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Show a plugin's kind, contract version, imports (the capabilities it
    /// needs), exports, size and SHA-256.
    Inspect {
        /// A component, or a core module with a component type.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one subcommand, writing results to `out` and progress to `err`.
pub fn run(
    command: PluginCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ToolError> {
    let stdout = |error: std::io::Error| ToolError::Io {
        path: "<stdout>".into(),
        source: error,
    };
    match command {
        PluginCommand::New {
            name,
            kind,
            lang,
            dir,
            sdk_path,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let mut options = scaffold::Options::new(&name, kind, lang);
            if let Some(path) = sdk_path {
                options.sdk_path = Some(path);
            }
            let files = scaffold::new_project(&dir, &options)?;
            writeln!(
                out,
                "created {} plugin {name:?} ({lang}) in {}:",
                kind,
                dir.display()
            )
            .map_err(stdout)?;
            for file in files {
                writeln!(out, "  {}", file.display()).map_err(stdout)?;
            }
            writeln!(out, "next: ember plugin build {}", dir.display()).map_err(stdout)?;
        }
        PluginCommand::Build {
            dir,
            out_dir,
            target_dir,
        } => {
            let _ = writeln!(err, "building {} ...", dir.display());
            let built = build::build(
                &dir,
                &build::Options {
                    out_dir,
                    target_dir,
                    ..build::Options::default()
                },
            )?;
            writeln!(
                out,
                "built {} ({} bytes) with {} in {:.1}s",
                built.component.display(),
                built.size,
                built.route,
                built.elapsed.as_secs_f64()
            )
            .map_err(stdout)?;
        }
        PluginCommand::Inspect { file, json } => {
            let report = inspect::inspect_file(&file)?;
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|error| ToolError::Usage(error.to_string()))?;
                writeln!(out, "{text}").map_err(stdout)?;
            } else {
                write!(out, "{report}").map_err(stdout)?;
            }
        }
    }
    Ok(())
}

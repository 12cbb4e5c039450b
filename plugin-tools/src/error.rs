//! The tools' one error type.

use std::path::PathBuf;

/// Why a tool command failed. Every variant names what it was working on.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The command line or a manifest asked for something invalid.
    #[error("{0}")]
    Usage(String),
    /// `ember-plugin.json` is missing or invalid.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A build tool (cargo, clang, componentize-py, node) is not installed.
    #[error("{tool} is needed to build {language} plugins and was not found: {hint}")]
    MissingTool {
        /// The program looked for.
        tool: String,
        /// The language that needs it.
        language: &'static str,
        /// How to install it.
        hint: String,
    },
    /// A build step ran and failed; its output was passed through.
    #[error("{step} failed ({status}); see its output above")]
    StepFailed {
        /// The command, for the operator.
        step: String,
        /// Its exit status.
        status: String,
    },
    /// The WIT contract did not parse or bindings could not be generated.
    #[error("WIT: {0}")]
    Wit(String),
    /// A core module could not be turned into a component.
    #[error("componentizing {path}: {message}")]
    Componentize {
        /// The core module.
        path: PathBuf,
        /// wit-component's explanation.
        message: String,
    },
    /// A file is not WebAssembly, or not a component this tool understands.
    #[error("{path}: {message}")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        message: String,
    },
}

impl ToolError {
    /// An [`Io`](ToolError::Io) error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ToolError {
        let path = path.into();
        move |source| ToolError::Io { path, source }
    }
}

//! Logging to the server's log through `wasi:logging/logging`.
//!
//! Each line is tagged with the plugin's name by the host. The `context`
//! argument of the WASI interface is set to the plugin-chosen `target`
//! (the SDK's functions use `"plugin"`).

use crate::bindings::relabeler::wasi::logging::logging::{self, Level};

/// Writes a line at `level` with a context string of the plugin's choosing.
pub fn log(level: Level, context: &str, message: &str) {
    logging::log(level, context, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, "plugin", message);
}

/// Writes an informational line.
pub fn info(message: &str) {
    log(Level::Info, "plugin", message);
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, "plugin", message);
}

/// Writes an error line.
pub fn error(message: &str) {
    log(Level::Error, "plugin", message);
}

pub use crate::bindings::relabeler::wasi::logging::logging::Level as LogLevel;

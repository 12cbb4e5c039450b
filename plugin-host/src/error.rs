//! The crate's errors: loading a plugin, and calling one.

use std::path::PathBuf;
use std::time::Duration;

use crate::capabilities::CapabilityError;

/// Why a plugin could not be loaded. Loading never affects other plugins.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("reading plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are neither a WebAssembly component nor a core module.
    #[error("not a WebAssembly module or component (bad magic or version)")]
    NotWasm,
    /// Turning a core module into a component failed (for example, it does
    /// not carry the component-type section wit-bindgen embeds).
    #[error("turning the core module into a component: {0}")]
    Componentize(String),
    /// wasmtime could not compile or load the component.
    #[error("compiling the component: {0}")]
    Compile(String),
    /// The component does not fit the world of the requested kind: a missing
    /// export, an export of another shape, or an import the host does not
    /// provide.
    #[error("the component does not implement the {kind} world: {detail}")]
    WrongWorld {
        /// The kind that was asked for.
        kind: crate::PluginKind,
        /// wasmtime's explanation.
        detail: String,
    },
    /// The plugin's first instance could not start, or its `init` failed
    /// (typically an `invalid-config` error).
    #[error("starting the plugin: {0}")]
    Init(String),
    /// A capability in the plugin's configuration is invalid.
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    /// The read-only directory granted to the plugin cannot be opened.
    #[error("opening read-only directory {path}: {reason}")]
    Directory {
        /// The host directory.
        path: PathBuf,
        /// Why it could not be opened.
        reason: String,
    },
    /// The compile cache directory could not be created.
    #[error("compile cache {path}: {source}")]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A background task failed (it panicked or the runtime is shutting down).
    #[error("plugin load task failed: {0}")]
    Task(String),
}

/// Why one plugin call failed. None of these affects other plugins or the
/// server; after [`Timeout`](Self::Timeout), [`OutOfMemory`](Self::OutOfMemory)
/// and [`Trap`](Self::Trap) the instance that failed has been discarded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginCallError {
    /// The call ran past `Limits::call_timeout` (interrupted by the epoch
    /// deadline, or abandoned by the outer timeout while in a host call).
    #[error("plugin call timed out after {0:?}")]
    Timeout(Duration),
    /// The instance tried to grow its memory past `Limits::max_memory_bytes`
    /// and then trapped.
    #[error("plugin ran out of memory (limit {limit_bytes} bytes)")]
    OutOfMemory {
        /// The configured limit.
        limit_bytes: usize,
    },
    /// The plugin trapped: a panic, an abort, `unreachable`, an out-of-bounds
    /// access. The message carries wasmtime's description and backtrace.
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin returned one of its typed errors; the instance is fine.
    #[error("plugin returned an error: {0}")]
    Guest(GuestError),
    /// The plugin answered with something the contract forbids (a relabel
    /// answer of the wrong length, a label named twice, more output than
    /// `Limits` allow); the instance is kept.
    #[error("plugin broke the contract: {0}")]
    InvalidOutput(String),
    /// A new instance could not be started (its `init` failed or trapped).
    #[error("starting a plugin instance failed: {0}")]
    Instantiate(String),
    /// The last instance failed recently; the plugin restarts after the
    /// backoff.
    #[error("plugin is restarting after a failure; retry in {retry_in:?}")]
    BackingOff {
        /// How long until a new instance may be started.
        retry_in: Duration,
    },
    /// The plugin failed `Limits::max_consecutive_failures` times in a row
    /// and is disabled until [`crate::Plugin::enable`].
    #[error("plugin is disabled after repeated failures")]
    Disabled,
    /// The call does not match the plugin's kind (`relabel` on an exporter).
    #[error("a {called} call on a {plugin} plugin")]
    WrongKind {
        /// What the plugin is.
        plugin: crate::PluginKind,
        /// What the call needed.
        called: crate::PluginKind,
    },
    /// The host's call machinery failed (a panic in host code while serving
    /// the call); reported, never expected.
    #[error("internal error in the plugin host: {0}")]
    Internal(String),
}

/// An error a plugin returned on purpose: the WIT `plugin-error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The plugin's configuration is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// This input cannot be processed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Something the plugin depends on failed, possibly temporarily.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The host denied a capability the plugin needed.
    #[error("denied: {0}")]
    Denied(String),
    /// The plugin does not implement this optional function.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Any other failure.
    #[error("{0}")]
    Internal(String),
}

impl From<crate::bindings::types::PluginError> for GuestError {
    fn from(error: crate::bindings::types::PluginError) -> GuestError {
        use crate::bindings::types::PluginError as Wit;
        match error {
            Wit::InvalidConfig(m) => GuestError::InvalidConfig(m),
            Wit::InvalidInput(m) => GuestError::InvalidInput(m),
            Wit::Unavailable(m) => GuestError::Unavailable(m),
            Wit::Denied(m) => GuestError::Denied(m),
            Wit::Unsupported(m) => GuestError::Unsupported(m),
            Wit::Internal(m) => GuestError::Internal(m),
        }
    }
}

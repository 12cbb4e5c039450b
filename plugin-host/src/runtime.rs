//! [`PluginRuntime`]: the engine, the epoch ticker, the linker and the
//! compile cache that every plugin of a server shares.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};

use crate::bindings;
use crate::cache::{CompileCache, sha256_hex};
use crate::capabilities::Capabilities;
use crate::plugin::{Plugin, PluginKind};
use crate::state::HostState;
use crate::{Limits, PluginError};

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled plugins are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// How often the epoch advances: the granularity of call deadlines. A
    /// call is interrupted between one and two ticks after its timeout.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: None,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// Where a plugin's WebAssembly comes from.
#[derive(Debug, Clone)]
pub enum PluginSource {
    /// A file: a component, or a core module with an embedded component type
    /// (what `wit-bindgen` guests built for `wasm32-unknown-unknown` are).
    Path(PathBuf),
    /// The same, already in memory.
    Bytes(Vec<u8>),
}

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The plugin's name, used in logs, errors and status.
    pub name: String,
    /// Which world it implements.
    pub kind: PluginKind,
    /// Its code.
    pub source: PluginSource,
    /// Its configuration map, served through `wasi:config/store`.
    pub config: BTreeMap<String, String>,
    /// Time, memory and restart limits.
    pub limits: Limits,
    /// What it may reach outside the sandbox.
    pub capabilities: Capabilities,
}

impl PluginSpec {
    /// A spec with an empty configuration, default limits and no capabilities.
    pub fn new(name: impl Into<String>, kind: PluginKind, source: PluginSource) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            kind,
            source,
            config: BTreeMap::new(),
            limits: Limits::default(),
            capabilities: Capabilities::none(),
        }
    }

    /// Replaces the configuration map.
    pub fn with_config<K: Into<String>, V: Into<String>>(
        mut self,
        config: impl IntoIterator<Item = (K, V)>,
    ) -> PluginSpec {
        self.config = config
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> PluginSpec {
        self.limits = limits;
        self
    }

    /// Replaces the capabilities.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> PluginSpec {
        self.capabilities = capabilities;
        self
    }
}

/// The shared plugin machinery: one wasmtime [`Engine`] (with epoch
/// interruption, advanced by a background thread), one [`Linker`] providing
/// WASI p2, `wasi:http` and the Ember imports, and the compile cache.
///
/// Cheap to clone; thread-safe. Dropping the last clone (and every
/// [`Plugin`] loaded from it) stops the epoch thread.
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("cache_dir", &self.inner.cache)
            .field("epoch_tick", &self.inner.epoch_tick)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) epoch_tick: Duration,
    cache: Option<CompileCache>,
    _ticker: EpochTicker,
}

/// The thread that advances the engine's epoch every tick. Dropping it
/// disconnects the channel, which ends the thread at its next tick.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<EpochTicker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ember-plugin-epoch".to_owned())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl PluginRuntime {
    /// Creates the engine, starts the epoch thread and prepares the linker
    /// and cache directory.
    pub fn new(config: RuntimeConfig) -> Result<PluginRuntime, PluginError> {
        let mut engine_config = Config::new();
        engine_config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .parallel_compilation(true);
        let engine = Engine::new(&engine_config)
            .map_err(|error| PluginError::Compile(format!("{error:#}")))?;
        let linker =
            build_linker(&engine).map_err(|error| PluginError::Compile(format!("{error:#}")))?;
        let cache = match config.cache_dir {
            Some(dir) => Some(
                CompileCache::new(dir.clone(), &engine)
                    .map_err(|source| PluginError::Cache { path: dir, source })?,
            ),
            None => None,
        };
        let tick = config.epoch_tick.max(Duration::from_millis(1));
        let ticker = EpochTicker::start(engine.clone(), tick)
            .map_err(|error| PluginError::Task(format!("starting the epoch thread: {error}")))?;
        Ok(PluginRuntime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                epoch_tick: tick,
                cache,
                _ticker: ticker,
            }),
        })
    }

    /// Loads a plugin: reads it, compiles it (or loads the cached artifact),
    /// links it against the world of `spec.kind`, starts its first instance
    /// and runs `init`. Blocks for as long as compilation takes (tens of
    /// milliseconds to seconds on a cache miss, about a millisecond on a
    /// hit); from async code use [`load`](Self::load).
    pub fn load_blocking(&self, spec: PluginSpec) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let bytes = match &spec.source {
            PluginSource::Bytes(bytes) => std::borrow::Cow::Borrowed(bytes.as_slice()),
            PluginSource::Path(path) => {
                std::borrow::Cow::Owned(std::fs::read(path).map_err(|source| {
                    PluginError::Read {
                        path: path.clone(),
                        source,
                    }
                })?)
            }
        };
        if let Some(dir) = &spec.capabilities.read_only_dir
            && !dir.host_path.is_dir()
        {
            return Err(PluginError::Directory {
                path: dir.host_path.clone(),
                reason: "not a directory".to_owned(),
            });
        }
        let (component, from_cache) = self.compile(&bytes)?;
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|error| PluginError::WrongWorld {
                kind: spec.kind,
                detail: format!("{error:#}"),
            })?;
        let plugin = Plugin::start(Arc::clone(&self.inner), spec, instance_pre, from_cache)?;
        tracing::info!(plugin = plugin.name(), kind = %plugin.kind(), from_cache,
            elapsed = ?started.elapsed(), "plugin loaded");
        Ok(plugin)
    }

    /// [`load_blocking`](Self::load_blocking) on tokio's blocking pool, so
    /// that compilation never stalls the async runtime.
    pub async fn load(&self, spec: PluginSpec) -> Result<Plugin, PluginError> {
        let runtime = self.clone();
        tokio::task::spawn_blocking(move || runtime.load_blocking(spec))
            .await
            .map_err(|error| PluginError::Task(error.to_string()))?
    }

    /// Turns a core module into a component, as loading does, for tools that
    /// want to ship components (`wasm-tools component new` does the same).
    /// A component is returned unchanged.
    pub fn componentize(bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        match wasm_kind(bytes) {
            Some(WasmKind::Component) => Ok(bytes.to_vec()),
            Some(WasmKind::Module) => componentize(bytes),
            None => Err(PluginError::NotWasm),
        }
    }

    /// Compiles (or loads from the cache) a component or core module.
    /// Returns whether the cache answered.
    fn compile(&self, bytes: &[u8]) -> Result<(Component, bool), PluginError> {
        let engine = &self.inner.engine;
        let cached_path = self
            .inner
            .cache
            .as_ref()
            .map(|cache| cache.path_for(&sha256_hex(bytes)));
        if let (Some(cache), Some(path)) = (&self.inner.cache, &cached_path)
            && let Some(component) = cache.load(engine, path)
        {
            return Ok((component, true));
        }
        let component_bytes = match wasm_kind(bytes) {
            Some(WasmKind::Component) => std::borrow::Cow::Borrowed(bytes),
            Some(WasmKind::Module) => std::borrow::Cow::Owned(componentize(bytes)?),
            None => return Err(PluginError::NotWasm),
        };
        let component = Component::new(engine, &component_bytes)
            .map_err(|error| PluginError::Compile(format!("{error:#}")))?;
        if let (Some(cache), Some(path)) = (&self.inner.cache, &cached_path) {
            // A cache that cannot be written costs a recompile next time,
            // nothing more; the plugin still loads.
            match component.serialize() {
                Ok(artifact) => {
                    if let Err(error) = cache.store(path, &artifact) {
                        tracing::warn!(path = %path.display(), %error, "cannot cache compiled plugin");
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot serialize compiled plugin")
                }
            }
        }
        Ok((component, false))
    }
}

/// One linker for every kind: all worlds import the same interfaces, and a
/// component may import any WASI p2 interface beyond them; the WASI context
/// (built per store from the plugin's capabilities) decides what they can do.
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    bindings::relabeler::Relabeler::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

enum WasmKind {
    Module,
    Component,
}

/// Tells a core module from a component by the preamble: `\0asm`, then
/// version 1 for a module, or version 0x0d with layer 1 for a component.
fn wasm_kind(bytes: &[u8]) -> Option<WasmKind> {
    let preamble = bytes.get(..8)?;
    if &preamble[..4] != b"\0asm" {
        return None;
    }
    match preamble[4..] {
        [1, 0, 0, 0] => Some(WasmKind::Module),
        [0x0d, 0, 1, 0] => Some(WasmKind::Component),
        _ => None,
    }
}

/// Turns a core module carrying `component-type` custom sections (as
/// `wit-bindgen` and `wit-component`-aware toolchains emit) into a component.
/// Modules built for WASI preview 1 (C with wasi-libc, `wasm32-wasip1`) get
/// the reactor adapter that maps preview 1 onto preview 2; for other modules
/// the adapter is left out by the encoder.
fn componentize(module: &[u8]) -> Result<Vec<u8>, PluginError> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| {
            encoder.adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .map(|encoder| encoder.validate(true))
        .and_then(|encoder| encoder.encode())
        .map_err(|error| PluginError::Componentize(format!("{error:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preambles_are_told_apart() {
        assert!(matches!(
            wasm_kind(b"\0asm\x01\0\0\0rest"),
            Some(WasmKind::Module)
        ));
        assert!(matches!(
            wasm_kind(b"\0asm\x0d\0\x01\0rest"),
            Some(WasmKind::Component)
        ));
        assert!(wasm_kind(b"\0asm\x02\0\0\0").is_none());
        assert!(wasm_kind(b"\x7fELF\x02\x01\x01\0").is_none());
        assert!(wasm_kind(b"\0as").is_none());
    }

    #[test]
    fn garbage_is_rejected_before_compiling() {
        let runtime = PluginRuntime::new(RuntimeConfig::default()).unwrap();
        let spec = PluginSpec::new(
            "junk",
            PluginKind::Relabeler,
            PluginSource::Bytes(b"junk".to_vec()),
        );
        assert!(matches!(
            runtime.load_blocking(spec),
            Err(PluginError::NotWasm)
        ));
    }

    #[test]
    fn a_module_without_component_type_cannot_be_componentized() {
        let runtime = PluginRuntime::new(RuntimeConfig::default()).unwrap();
        // The smallest valid core module: preamble only.
        let spec = PluginSpec::new(
            "empty",
            PluginKind::Relabeler,
            PluginSource::Bytes(b"\0asm\x01\0\0\0".to_vec()),
        );
        let error = runtime.load_blocking(spec).unwrap_err();
        assert!(
            matches!(
                error,
                PluginError::Componentize(_) | PluginError::WrongWorld { .. }
            ),
            "{error}"
        );
    }
}

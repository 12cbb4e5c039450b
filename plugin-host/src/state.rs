//! What a plugin's `Store` holds: its WASI context, its limits and the
//! implementations of the host side of the plugin worlds.
//!
//! One [`HostState`] belongs to one instance of one plugin. Everything a
//! plugin can reach outside its memory goes through here: WASI (built from
//! [`Capabilities`], nothing else granted), `wasi:http` (every request checked
//! by [`Capabilities::check_http`] in [`HttpGate::send_request`]),
//! `wasi:logging` (to `tracing`, tagged and rate-limited) and `wasi:config`
//! (the plugin's configuration map, read-only).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::bindings::{config_store, logging, types};
use crate::capabilities::Capabilities;
use crate::{Limits, PluginError};

/// The longest log message kept; longer ones are cut, so a plugin cannot
/// flood the server's log with one huge line.
const MAX_LOG_MESSAGE_BYTES: usize = 4096;

/// Per-store state.
pub(crate) struct HostState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    gate: HttpGate,
    config: Arc<BTreeMap<String, String>>,
    limits: MemoryLimiter,
    log_lines_left: u32,
    max_log_lines: u32,
}

/// [`StoreLimits`] plus a note of whether a growth was refused, so that the
/// trap that usually follows can be reported as out-of-memory.
struct MemoryLimiter {
    inner: StoreLimits,
    max_memory_bytes: usize,
    refused_growth: bool,
    /// Linear memory granted so far, summed over the instance's memories
    /// (a component has one per core module that declares one).
    memory_bytes: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = self
                .memory_bytes
                .saturating_add(desired.saturating_sub(current));
        } else {
            self.refused_growth = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The `wasi:http` hooks: the capability check, and the call deadline that
/// bounds a request's timeouts.
pub(crate) struct HttpGate {
    plugin: Arc<str>,
    capabilities: Arc<Capabilities>,
    /// When the current call must end; requests get no more time than this.
    deadline: Option<Instant>,
}

impl HostState {
    /// Builds the state for a new instance. WASI grants exactly what
    /// `capabilities` says: named environment variables, one read-only
    /// directory, no sockets, no arguments, no stdin; stdout and stderr are
    /// discarded. Clocks and randomness are always available.
    pub(crate) fn new(
        plugin: Arc<str>,
        capabilities: Arc<Capabilities>,
        config: Arc<BTreeMap<String, String>>,
        limits: &Limits,
    ) -> Result<HostState, PluginError> {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (name, value) in capabilities.granted_env(|name| std::env::var(name).ok()) {
            wasi.env(name, value);
        }
        if let Some(dir) = &capabilities.read_only_dir {
            wasi.preopened_dir(&dir.host_path, &dir.guest_path, FsPerms::ReadOnly)
                .map_err(|error| PluginError::Directory {
                    path: dir.host_path.clone(),
                    reason: format!("{error:#}"),
                })?;
        }
        let inner = StoreLimitsBuilder::new()
            .memory_size(limits.max_memory_bytes)
            .table_elements(limits.max_table_elements)
            .instances(limits.max_core_instances)
            .build();
        Ok(HostState {
            plugin: Arc::clone(&plugin),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            gate: HttpGate {
                plugin,
                capabilities,
                deadline: None,
            },
            config,
            limits: MemoryLimiter {
                inner,
                max_memory_bytes: limits.max_memory_bytes,
                refused_growth: false,
                memory_bytes: 0,
            },
            log_lines_left: limits.max_log_lines_per_call,
            max_log_lines: limits.max_log_lines_per_call,
        })
    }

    /// Resets the per-call allowances at the start of a call that must end
    /// by `deadline`.
    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.gate.deadline = Some(deadline);
        self.limits.refused_growth = false;
        self.log_lines_left = self.max_log_lines;
    }

    /// Whether a memory growth was refused since the call began.
    pub(crate) fn refused_memory_growth(&self) -> bool {
        self.limits.refused_growth
    }

    /// Linear memory the instance holds, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.limits.memory_bytes
    }

    /// The memory cap, for error messages.
    pub(crate) fn max_memory_bytes(&self) -> usize {
        self.limits.max_memory_bytes
    }

    /// The limiter, for `Store::limiter`.
    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri();
        let verdict = match uri.host() {
            Some(host) => self.capabilities.check_http(
                uri.scheme_str().unwrap_or("https"),
                host,
                uri.port_u16(),
            ),
            None => Err(crate::CapabilityError::BadDestination(format!(
                "no host in {uri}"
            ))),
        };
        if let Err(denied) = verdict {
            tracing::warn!(plugin = %self.plugin, %denied, "plugin request denied");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // A request gets no more than nine tenths of the time the call has
        // left, so a slow server cannot hold a plugin instance past its
        // deadline, and the plugin still has time to handle the timeout
        // before the epoch deadline traps it.
        let remaining = self
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()) * 9 / 10)
            .unwrap_or(Duration::from_secs(30));
        let options = bounded(options.unwrap_or_default(), remaining);
        Box::new(async move {
            use http_body_util::BodyExt;

            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// Caps every timeout of `options` at `remaining`.
fn bounded(
    options: wasmtime_wasi_http::RequestOptions,
    remaining: Duration,
) -> wasmtime_wasi_http::RequestOptions {
    let cap = |timeout: Option<Duration>| Some(timeout.map_or(remaining, |t| t.min(remaining)));
    wasmtime_wasi_http::RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

impl types::Host for HostState {}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, context: String, mut message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        if message.len() > MAX_LOG_MESSAGE_BYTES {
            let mut cut = MAX_LOG_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level {
            logging::Level::Trace => tracing::trace!(plugin, context, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, context, "{message}"),
            logging::Level::Info => tracing::info!(plugin, context, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, context, "{message}"),
            logging::Level::Error | logging::Level::Critical => {
                tracing::error!(plugin, context, "{message}")
            }
        }
        if self.log_lines_left == 0 {
            tracing::warn!(plugin, "plugin reached its log line limit for this call");
        }
    }
}

impl config_store::Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<String>, config_store::Error> {
        Ok(self.config.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_store::Error> {
        Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

//! [`Plugin`]: one loaded plugin, its instances, its health and its calls.
//!
//! # Instances and stores
//!
//! Each instance lives in its own [`Store`] and serves calls one at a time;
//! a plugin keeps up to `Limits::max_instances` of them in a pool, so that
//! that many calls run in parallel. Instances are reused across calls rather
//! than created per call: instantiating costs about as much as a small call
//! (0.1–0.2 ms for a Rust plugin, milliseconds for Python or JavaScript), and
//! plugins may keep caches between calls. The price is that state persists
//! for the instance's life, which the SDK documents. Memory is capped per
//! instance by `Limits::max_memory_bytes`.
//!
//! # Failures
//!
//! A call that traps, runs out of time or out of memory discards its
//! instance: the store is dropped with everything in it. The next call starts
//! a new instance from the pre-instantiated component, but not before a
//! backoff that doubles with each consecutive failure
//! (`Limits::restart_backoff` up to `Limits::max_restart_backoff`); calls
//! during the backoff fail fast with [`PluginCallError::BackingOff`]. After
//! `Limits::max_consecutive_failures` failures without a success in between
//! the plugin is disabled ([`PluginState::Disabled`]) until
//! [`Plugin::enable`]. Typed guest errors and contract violations are not
//! failures: the instance is fine and is kept.
//!
//! # Deadlines
//!
//! Every call (and every instantiation, which runs `init`) gets an epoch
//! deadline of `Limits::call_timeout`; wasm code past it traps. A guest
//! blocked in a host call (an HTTP request) does not run wasm code, so the
//! async side also waits at most `call_timeout + Limits::host_call_grace`
//! and then reports [`PluginCallError::Timeout`]; HTTP requests themselves
//! are given no more than the call's remaining time.
//!
//! # Async
//!
//! Calls run on tokio's blocking pool (`spawn_blocking`), never on an async
//! worker thread; the futures returned here are cancel-safe in the sense
//! that dropping one leaves the plugin consistent (the call finishes in the
//! background and its instance returns to the pool).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::bindings::{discovery, exporter, relabeler, remote_storage, types};
use crate::capabilities::Capabilities;
use crate::metrics::{Labels, MetricFamily, Sample};
use crate::packed::{self, PackedAnswer, PackedBatch};
use crate::runtime::{PluginSpec, RuntimeInner};
use crate::state::HostState;
use crate::storage::{ReadQuery, Series, TargetGroup, WriteError};
use crate::{GuestError, Limits, PluginCallError, PluginError};

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// `discovery`: reports target groups.
    Discovery,
    /// `exporter`: collects metric families for a target.
    Exporter,
    /// `relabeler`: rewrites or drops label sets.
    Relabeler,
    /// `remote-storage`: writes (and reads) series elsewhere.
    RemoteStorage,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Discovery => "discovery",
            PluginKind::Exporter => "exporter",
            PluginKind::Relabeler => "relabeler",
            PluginKind::RemoteStorage => "remote-storage",
        })
    }
}

/// Whether a plugin takes calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// Calls are served.
    Ready,
    /// An instance failed; a new one may start at `until`.
    BackingOff {
        /// When the backoff ends.
        until: Instant,
    },
    /// Disabled after repeated failures; see [`Plugin::enable`].
    Disabled,
}

/// A snapshot of a plugin's health and counters, for the status page and
/// self-metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginStatus {
    /// Whether calls are served.
    pub state: PluginState,
    /// Instances started to replace failed ones.
    pub restarts: u64,
    /// The most recent failure or error, for the operator.
    pub last_error: Option<String>,
    /// Calls made (including failed ones).
    pub calls: u64,
    /// Calls that returned any error.
    pub errors: u64,
    /// Calls and instantiations that trapped (timeouts and out-of-memory
    /// traps are counted separately, not here).
    pub traps: u64,
    /// Calls that ran out of time.
    pub timeouts: u64,
    /// Calls that ran out of memory.
    pub out_of_memory: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Instances alive now (idle in the pool).
    pub idle_instances: usize,
    /// Linear memory held by the idle instances, in bytes (instances busy in
    /// a call are not counted).
    pub memory_bytes: usize,
    /// Time spent in calls, summed.
    pub busy_time: Duration,
    /// Whether the compiled code came from the on-disk cache.
    pub loaded_from_cache: bool,
}

/// A loaded plugin. Cheap to clone; every clone is the same plugin.
///
/// Thread-safe: calls may come from any task; up to `Limits::max_instances`
/// run at once, the rest wait (at most `call_timeout`) for an instance.
#[derive(Clone)]
pub struct Plugin {
    shared: Arc<Shared>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
            .finish_non_exhaustive()
    }
}

struct Shared {
    name: Arc<str>,
    kind: PluginKind,
    runtime: Arc<RuntimeInner>,
    pre: KindPre,
    limits: Limits,
    capabilities: Arc<Capabilities>,
    config: Arc<BTreeMap<String, String>>,
    permits: Arc<Semaphore>,
    pool: Mutex<Pool>,
    counters: Counters,
    loaded_from_cache: bool,
}

enum KindPre {
    Discovery(discovery::DiscoveryPre<HostState>),
    Exporter(exporter::ExporterPre<HostState>),
    Relabeler(relabeler::RelabelerPre<HostState>),
    RemoteStorage(remote_storage::RemoteStoragePre<HostState>),
}

/// The typed exports of one instance.
enum Bindings {
    Discovery(discovery::Discovery),
    Exporter(exporter::Exporter),
    Relabeler(relabeler::Relabeler),
    RemoteStorage(remote_storage::RemoteStorage),
}

struct Instance {
    store: Store<HostState>,
    bindings: Bindings,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Instance>,
    consecutive_failures: u32,
    backoff_until: Option<Instant>,
    disabled: bool,
    /// Failed instances not yet replaced; the next instantiations are
    /// restarts.
    unreplaced_failures: u32,
    restarts: u64,
    last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    out_of_memory: AtomicU64,
    busy_nanos: AtomicU64,
}

/// The result of running guest code: `Err` is a trap (the instance is
/// discarded), `Ok(Err)` an error that leaves the instance usable.
type GuestResult<R> = wasmtime::Result<Result<R, PluginCallError>>;

impl Plugin {
    /// Builds the plugin and starts its first instance, so that a broken
    /// `init` (bad configuration) fails the load rather than the first call.
    pub(crate) fn start(
        runtime: Arc<RuntimeInner>,
        spec: PluginSpec,
        instance_pre: InstancePre<HostState>,
        loaded_from_cache: bool,
    ) -> Result<Plugin, PluginError> {
        let wrong_world = |error: wasmtime::Error| PluginError::WrongWorld {
            kind: spec.kind,
            detail: format!("{error:#}"),
        };
        let pre = match spec.kind {
            PluginKind::Discovery => {
                KindPre::Discovery(discovery::DiscoveryPre::new(instance_pre).map_err(wrong_world)?)
            }
            PluginKind::Exporter => {
                KindPre::Exporter(exporter::ExporterPre::new(instance_pre).map_err(wrong_world)?)
            }
            PluginKind::Relabeler => {
                KindPre::Relabeler(relabeler::RelabelerPre::new(instance_pre).map_err(wrong_world)?)
            }
            PluginKind::RemoteStorage => KindPre::RemoteStorage(
                remote_storage::RemoteStoragePre::new(instance_pre).map_err(wrong_world)?,
            ),
        };
        let max_instances = spec.limits.max_instances.max(1);
        let shared = Arc::new(Shared {
            name: Arc::from(spec.name),
            kind: spec.kind,
            runtime,
            pre,
            limits: spec.limits,
            capabilities: Arc::new(spec.capabilities),
            config: Arc::new(spec.config),
            permits: Arc::new(Semaphore::new(max_instances)),
            pool: Mutex::new(Pool::default()),
            counters: Counters::default(),
            loaded_from_cache,
        });
        let first = shared.instantiate().map_err(|error| match error {
            InstantiateError::Setup(error) => error,
            InstantiateError::Failed(error) => PluginError::Init(error.to_string()),
        })?;
        shared.pool().idle.push(first);
        Ok(Plugin { shared })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        self.shared.kind
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// A snapshot of health and counters.
    pub fn status(&self) -> PluginStatus {
        let pool = self.shared.pool();
        let now = Instant::now();
        let state = if pool.disabled {
            PluginState::Disabled
        } else {
            match pool.backoff_until {
                Some(until) if until > now && pool.idle.is_empty() => {
                    PluginState::BackingOff { until }
                }
                _ => PluginState::Ready,
            }
        };
        let counters = &self.shared.counters;
        PluginStatus {
            state,
            restarts: pool.restarts,
            last_error: pool.last_error.clone(),
            calls: counters.calls.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            traps: counters.traps.load(Ordering::Relaxed),
            timeouts: counters.timeouts.load(Ordering::Relaxed),
            out_of_memory: counters.out_of_memory.load(Ordering::Relaxed),
            consecutive_failures: pool.consecutive_failures,
            idle_instances: pool.idle.len(),
            memory_bytes: pool
                .idle
                .iter()
                .map(|i| i.store.data().memory_bytes())
                .sum(),
            busy_time: Duration::from_nanos(counters.busy_nanos.load(Ordering::Relaxed)),
            loaded_from_cache: self.shared.loaded_from_cache,
        }
    }

    /// Re-enables a disabled plugin (an operator's decision) and clears its
    /// failure count and backoff.
    pub fn enable(&self) {
        let mut pool = self.shared.pool();
        pool.disabled = false;
        pool.consecutive_failures = 0;
        pool.backoff_until = None;
    }

    /// Relabels a batch of label sets (a whole scrape, or a whole discovery
    /// update): one entry per input, in order, `None` for a dropped set.
    /// Input sets should be sorted by name with unique names, as the WIT
    /// contract promises plugins. Returned sets are sorted by name; a set
    /// naming a label twice fails the call with
    /// [`PluginCallError::InvalidOutput`]. Labels the plugin left unchanged
    /// are returned as the caller's own strings, moved rather than copied.
    pub async fn relabel(
        &self,
        batch: Vec<Labels>,
    ) -> Result<Vec<Option<Labels>>, PluginCallError> {
        self.expect_kind(PluginKind::Relabeler)?;
        let max_output_bytes = self.shared.limits.max_output_bytes;
        self.call(move |store, bindings| {
            let Bindings::Relabeler(relabeler) = bindings else {
                return Ok(Err(PluginCallError::Internal(
                    "instance of another kind".into(),
                )));
            };
            let packed = match packed::pack(&batch) {
                Ok(packed) => packed,
                Err(error) => return Ok(Err(error)),
            };
            let answer = match relabeler.call_relabel(store, &packed)? {
                Ok(answer) => answer,
                Err(error) => return Ok(Err(PluginCallError::Guest(error.into()))),
            };
            Ok(packed::unpack(batch, &packed, answer, max_output_bytes))
        })
        .await
    }

    /// [`relabel`](Self::relabel) for callers that keep labels in their own
    /// form: the batch is packed straight from the caller's strings and the
    /// answer borrows the plugin's text, so no `String` is made per label
    /// either way; unchanged sets are flagged so the caller can keep what it
    /// has. Same contract checks and limits as `relabel`.
    pub async fn relabel_packed(
        &self,
        batch: PackedBatch,
    ) -> Result<PackedAnswer, PluginCallError> {
        self.expect_kind(PluginKind::Relabeler)?;
        let max_output_bytes = self.shared.limits.max_output_bytes;
        self.call(move |store, bindings| {
            let Bindings::Relabeler(relabeler) = bindings else {
                return Ok(Err(PluginCallError::Internal(
                    "instance of another kind".into(),
                )));
            };
            let answer = match relabeler.call_relabel(store, &batch.inner)? {
                Ok(answer) => answer,
                Err(error) => return Ok(Err(PluginCallError::Guest(error.into()))),
            };
            Ok(PackedAnswer::new(batch, answer, max_output_bytes))
        })
        .await
    }

    /// Collects an exporter's metric families for the target with labels
    /// `target`, passing the scrape's URL parameters `params`.
    pub async fn collect(
        &self,
        target: Labels,
        params: Vec<(String, String)>,
    ) -> Result<Vec<MetricFamily>, PluginCallError> {
        self.expect_kind(PluginKind::Exporter)?;
        let max_output_bytes = self.shared.limits.max_output_bytes;
        self.call(move |store, bindings| {
            let Bindings::Exporter(exporter) = bindings else {
                return Ok(Err(PluginCallError::Internal(
                    "instance of another kind".into(),
                )));
            };
            let target = to_wit_labels(target);
            let params: Vec<types::Param> = params
                .into_iter()
                .map(|(name, value)| types::Param { name, value })
                .collect();
            let families = match exporter.call_collect(store, &target, &params)? {
                Ok(families) => families,
                Err(error) => return Ok(Err(PluginCallError::Guest(error.into()))),
            };
            let mut budget = OutputBudget::new(max_output_bytes);
            Ok(families
                .into_iter()
                .map(|family| {
                    budget.spend(family.name.len() + family.help.len() + family.unit.len())?;
                    let samples = family
                        .samples
                        .into_iter()
                        .map(|sample| {
                            budget.spend(sample.name.len() + 16)?;
                            Ok(Sample {
                                name: sample.name,
                                labels: from_wit_labels(sample.labels, &mut budget)?,
                                value: sample.value,
                                timestamp_ms: sample.timestamp_ms,
                            })
                        })
                        .collect::<Result<Vec<_>, PluginCallError>>()?;
                    Ok(MetricFamily {
                        name: family.name,
                        metric_type: family.metric_type.into(),
                        help: family.help,
                        unit: family.unit,
                        samples,
                    })
                })
                .collect())
        })
        .await
    }

    /// Asks a discovery plugin for its current target groups.
    pub async fn refresh(&self) -> Result<Vec<TargetGroup>, PluginCallError> {
        self.expect_kind(PluginKind::Discovery)?;
        let max_output_bytes = self.shared.limits.max_output_bytes;
        self.call(move |store, bindings| {
            let Bindings::Discovery(discovery) = bindings else {
                return Ok(Err(PluginCallError::Internal(
                    "instance of another kind".into(),
                )));
            };
            let groups = match discovery.call_refresh(store)? {
                Ok(groups) => groups,
                Err(error) => return Ok(Err(PluginCallError::Guest(error.into()))),
            };
            let mut budget = OutputBudget::new(max_output_bytes);
            Ok(groups
                .into_iter()
                .map(|group| {
                    budget.spend(group.source.len())?;
                    Ok(TargetGroup {
                        source: group.source,
                        targets: group
                            .targets
                            .into_iter()
                            .map(|target| from_wit_labels(target, &mut budget))
                            .collect::<Result<_, _>>()?,
                        labels: from_wit_labels(group.labels, &mut budget)?,
                    })
                })
                .collect())
        })
        .await
    }

    /// Hands a batch of series to a remote-storage plugin. The outer result
    /// is the call (trap, timeout, ...); the inner one the plugin's verdict.
    pub async fn write(
        &self,
        batch: Vec<Series>,
    ) -> Result<Result<(), WriteError>, PluginCallError> {
        self.expect_kind(PluginKind::RemoteStorage)?;
        self.call(move |store, bindings| {
            let Bindings::RemoteStorage(storage) = bindings else {
                return Ok(Err(PluginCallError::Internal(
                    "instance of another kind".into(),
                )));
            };
            let batch: Vec<types::Series> = batch.into_iter().map(Series::into_wit).collect();
            Ok(Ok(storage
                .call_write(store, &batch)?
                .map_err(WriteError::from)))
        })
        .await
    }

    /// Asks a remote-storage plugin to answer a remote-read query.
    pub async fn read(&self, query: ReadQuery) -> Result<Vec<Series>, PluginCallError> {
        self.expect_kind(PluginKind::RemoteStorage)?;
        let max_output_bytes = self.shared.limits.max_output_bytes;
        self.call(move |store, bindings| {
            let Bindings::RemoteStorage(storage) = bindings else {
                return Ok(Err(PluginCallError::Internal(
                    "instance of another kind".into(),
                )));
            };
            let series = match storage.call_read(store, &query.into_wit())? {
                Ok(series) => series,
                Err(error) => return Ok(Err(PluginCallError::Guest(error.into()))),
            };
            let mut budget = OutputBudget::new(max_output_bytes);
            Ok(series
                .into_iter()
                .map(|series| {
                    budget.spend(series.samples.len() * 16)?;
                    Ok(Series {
                        labels: from_wit_labels(series.labels, &mut budget)?,
                        samples: series
                            .samples
                            .into_iter()
                            .map(|sample| (sample.timestamp_ms, sample.value))
                            .collect(),
                    })
                })
                .collect())
        })
        .await
    }

    fn expect_kind(&self, wanted: PluginKind) -> Result<(), PluginCallError> {
        if self.shared.kind == wanted {
            Ok(())
        } else {
            Err(PluginCallError::WrongKind {
                plugin: self.shared.kind,
                called: wanted,
            })
        }
    }

    /// Runs `work` on an instance on the blocking pool, within the deadline.
    async fn call<R, F>(&self, work: F) -> Result<R, PluginCallError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store<HostState>, &Bindings) -> GuestResult<R> + Send + 'static,
    {
        let shared = &self.shared;
        shared.counters.calls.fetch_add(1, Ordering::Relaxed);
        if shared.pool().disabled {
            shared.counters.errors.fetch_add(1, Ordering::Relaxed);
            return Err(PluginCallError::Disabled);
        }
        let timeout = shared.limits.call_timeout;
        // Waiting for a free instance spends the caller's time budget too.
        let permit = match tokio::time::timeout(
            timeout,
            Arc::clone(&shared.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(PluginCallError::Disabled),
            Err(_elapsed) => {
                shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(PluginCallError::Timeout(timeout));
            }
        };
        let worker = Arc::clone(shared);
        let task = tokio::task::spawn_blocking(move || worker.run(permit, work));
        let result = match tokio::time::timeout(timeout + shared.limits.host_call_grace, task).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(PluginCallError::Internal(join_error.to_string())),
            Err(_elapsed) => {
                // The guest is stuck in a host call; the blocking task still
                // owns the instance and returns or discards it when the host
                // call ends (HTTP requests are bounded by the call deadline).
                shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format!("call timed out after {timeout:?} in a host call"));
                Err(PluginCallError::Timeout(timeout))
            }
        };
        if result.is_err() {
            shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

enum InstantiateError {
    /// The host could not set up a store (a capability could not be
    /// granted); not the plugin's fault.
    Setup(PluginError),
    /// Instantiation or `init` failed: the plugin's fault.
    Failed(PluginCallError),
}

impl Shared {
    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves plain counters behind, which
        // are still meaningful; keep serving rather than poisoning every call.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn note_error(&self, message: String) {
        self.pool().last_error = Some(message);
    }

    /// The epoch ticks that make up one call's deadline (rounded up, plus
    /// one because the current tick may be about to end).
    fn deadline_ticks(&self) -> u64 {
        let tick = self.runtime.epoch_tick.as_nanos().max(1);
        let ticks = self.limits.call_timeout.as_nanos().div_ceil(tick);
        u64::try_from(ticks)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn begin(&self, store: &mut Store<HostState>) {
        store
            .data_mut()
            .begin_call(Instant::now() + self.limits.call_timeout);
        store.set_epoch_deadline(self.deadline_ticks());
    }

    /// Starts a new instance and runs its `init`.
    fn instantiate(&self) -> Result<Instance, InstantiateError> {
        let state = HostState::new(
            Arc::clone(&self.name),
            Arc::clone(&self.capabilities),
            Arc::clone(&self.config),
            &self.limits,
        )
        .map_err(InstantiateError::Setup)?;
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|state| state.limiter());
        store.epoch_deadline_trap();
        self.begin(&mut store);
        let bindings = match &self.pre {
            KindPre::Discovery(pre) => pre.instantiate(&mut store).map(Bindings::Discovery),
            KindPre::Exporter(pre) => pre.instantiate(&mut store).map(Bindings::Exporter),
            KindPre::Relabeler(pre) => pre.instantiate(&mut store).map(Bindings::Relabeler),
            KindPre::RemoteStorage(pre) => pre.instantiate(&mut store).map(Bindings::RemoteStorage),
        };
        let bindings =
            bindings.map_err(|trap| InstantiateError::Failed(self.classify(&trap, &store)))?;
        let init = match &bindings {
            Bindings::Discovery(b) => b.call_init(&mut store),
            Bindings::Exporter(b) => b.call_init(&mut store),
            Bindings::Relabeler(b) => b.call_init(&mut store),
            Bindings::RemoteStorage(b) => b.call_init(&mut store),
        };
        match init {
            Ok(Ok(())) => Ok(Instance { store, bindings }),
            Ok(Err(error)) => Err(InstantiateError::Failed(PluginCallError::Instantiate(
                format!("init: {}", GuestError::from(error)),
            ))),
            Err(trap) => Err(InstantiateError::Failed(self.classify(&trap, &store))),
        }
    }

    /// Turns a trap into the error the caller sees.
    fn classify(&self, trap: &wasmtime::Error, store: &Store<HostState>) -> PluginCallError {
        if matches!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        ) {
            PluginCallError::Timeout(self.limits.call_timeout)
        } else if store.data().refused_memory_growth() {
            PluginCallError::OutOfMemory {
                limit_bytes: store.data().max_memory_bytes(),
            }
        } else {
            PluginCallError::Trap(format!("{trap:?}"))
        }
    }

    /// Takes an idle instance or starts one (unless backing off or disabled).
    fn checkout(&self) -> Result<Instance, PluginCallError> {
        {
            let mut pool = self.pool();
            if pool.disabled {
                return Err(PluginCallError::Disabled);
            }
            if let Some(instance) = pool.idle.pop() {
                return Ok(instance);
            }
            if let Some(until) = pool.backoff_until {
                let now = Instant::now();
                if until > now {
                    return Err(PluginCallError::BackingOff {
                        retry_in: until - now,
                    });
                }
            }
            if pool.unreplaced_failures > 0 {
                pool.unreplaced_failures -= 1;
                pool.restarts += 1;
            }
        }
        // Instantiate outside the lock: it runs guest code (`init`).
        match self.instantiate() {
            Ok(instance) => Ok(instance),
            Err(InstantiateError::Setup(error)) => {
                Err(PluginCallError::Instantiate(error.to_string()))
            }
            Err(InstantiateError::Failed(error)) => {
                self.record_failure(&error);
                Err(error)
            }
        }
    }

    /// The blocking part of a call: check out, run, check in or discard.
    fn run<R>(
        &self,
        _permit: OwnedSemaphorePermit,
        work: impl FnOnce(&mut Store<HostState>, &Bindings) -> GuestResult<R>,
    ) -> Result<R, PluginCallError> {
        let mut instance = self.checkout()?;
        self.begin(&mut instance.store);
        let started = Instant::now();
        let outcome = work(&mut instance.store, &instance.bindings);
        let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters
            .busy_nanos
            .fetch_add(elapsed, Ordering::Relaxed);
        match outcome {
            Ok(result) => {
                let mut pool = self.pool();
                pool.idle.push(instance);
                pool.consecutive_failures = 0;
                pool.backoff_until = None;
                if let Err(error) = &result {
                    pool.last_error = Some(error.to_string());
                }
                result
            }
            Err(trap) => {
                let error = self.classify(&trap, &instance.store);
                // Dropping the store frees the instance and all its memory.
                drop(instance);
                self.record_failure(&error);
                Err(error)
            }
        }
    }

    /// Counts a failed instance and decides on backoff or disabling.
    fn record_failure(&self, error: &PluginCallError) {
        match error {
            PluginCallError::Timeout(_) => &self.counters.timeouts,
            PluginCallError::OutOfMemory { .. } => &self.counters.out_of_memory,
            _ => &self.counters.traps,
        }
        .fetch_add(1, Ordering::Relaxed);
        let mut pool = self.pool();
        pool.consecutive_failures += 1;
        pool.unreplaced_failures += 1;
        pool.last_error = Some(error.to_string());
        if pool.consecutive_failures >= self.limits.max_consecutive_failures {
            pool.disabled = true;
            // Idle instances of a disabled plugin only hold memory.
            pool.idle.clear();
            tracing::error!(plugin = %self.name, failures = pool.consecutive_failures, %error,
                "plugin disabled after repeated failures");
            return;
        }
        let exponent = pool.consecutive_failures.saturating_sub(1).min(20);
        let backoff = self
            .limits
            .restart_backoff
            .saturating_mul(1 << exponent)
            .min(self.limits.max_restart_backoff);
        pool.backoff_until = Some(Instant::now() + backoff);
        tracing::warn!(plugin = %self.name, %error, ?backoff, "plugin instance failed; restarting after backoff");
    }
}

/// Converts a label set into WIT labels, moving the strings.
fn to_wit_labels(labels: Labels) -> Vec<types::Label> {
    labels
        .into_iter()
        .map(|(name, value)| types::Label { name, value })
        .collect()
}

/// Converts a label set from a plugin: sorted by name, names unique, within
/// the output budget.
fn from_wit_labels(
    labels: Vec<types::Label>,
    budget: &mut OutputBudget,
) -> Result<Labels, PluginCallError> {
    let mut out: Labels = Vec::with_capacity(labels.len());
    for label in labels {
        budget.spend(label.name.len() + label.value.len())?;
        out.push((label.name, label.value));
    }
    packed::sort_and_check(&mut out)?;
    Ok(out)
}

/// Bytes of strings a plugin may return from one call.
struct OutputBudget {
    left: usize,
    limit: usize,
}

impl OutputBudget {
    fn new(limit: usize) -> OutputBudget {
        OutputBudget { left: limit, limit }
    }

    fn spend(&mut self, bytes: usize) -> Result<(), PluginCallError> {
        self.left = self.left.checked_sub(bytes).ok_or_else(|| {
            PluginCallError::InvalidOutput(format!(
                "output exceeds the limit of {} bytes",
                self.limit
            ))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit(pairs: &[(&str, &str)]) -> Vec<types::Label> {
        pairs
            .iter()
            .map(|(n, v)| types::Label {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect()
    }

    #[test]
    fn returned_label_sets_are_sorted() {
        let mut budget = OutputBudget::new(1000);
        let labels = from_wit_labels(wit(&[("b", "2"), ("a", "1")]), &mut budget).unwrap();
        assert_eq!(labels, [("a".into(), "1".into()), ("b".into(), "2".into())]);
    }

    #[test]
    fn duplicate_names_are_a_contract_violation() {
        let mut budget = OutputBudget::new(1000);
        let error = from_wit_labels(wit(&[("b", "1"), ("a", "x"), ("b", "2")]), &mut budget);
        assert!(matches!(error, Err(PluginCallError::InvalidOutput(m)) if m.contains("\"b\"")));
        let error = from_wit_labels(wit(&[("a", "1"), ("a", "2")]), &mut budget);
        assert!(matches!(error, Err(PluginCallError::InvalidOutput(_))));
    }

    #[test]
    fn output_budget_is_enforced() {
        let mut budget = OutputBudget::new(5);
        assert!(from_wit_labels(wit(&[("ab", "cd")]), &mut budget).is_ok());
        assert!(matches!(
            from_wit_labels(wit(&[("x", "y")]), &mut budget),
            Err(PluginCallError::InvalidOutput(_))
        ));
    }
}

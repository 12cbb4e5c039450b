//! Per-plugin self-metrics on `/metrics`.
//!
//! The runtime counts calls, errors, traps, timeouts, out-of-memory failures
//! and restarts inside each [`Plugin`]; those counters start at zero for
//! every loaded version. This module turns them into counters that survive
//! reloads: each loaded plugin is *tracked* under an id, and whenever
//! `/metrics` is collected (and once more when a plugin is retired) the
//! increase since the last reading is added to the exported counter. The
//! call-duration histogram is observed by [`super::PluginManager::timed`].
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `ember_plugin_calls_total` | counter | plugin, kind |
//! | `ember_plugin_errors_total` | counter | plugin, kind |
//! | `ember_plugin_traps_total` | counter | plugin, kind |
//! | `ember_plugin_timeouts_total` | counter | plugin, kind |
//! | `ember_plugin_out_of_memory_total` | counter | plugin, kind |
//! | `ember_plugin_restarts_total` | counter | plugin, kind |
//! | `ember_plugin_call_duration_seconds` | histogram | plugin, kind |
//! | `ember_plugin_memory_bytes` | gauge | plugin, kind |
//! | `ember_plugin_state` | gauge, 1 for the current state | plugin, kind, state |
//! | `ember_plugin_load_failures_total` | counter | plugin |

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use ember_plugin_host::{Plugin, PluginStatus};
use prometheus::core::Desc;
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};

use super::PluginManager;

/// The exported metric vectors and the readings behind them.
#[derive(Clone)]
pub struct PluginMetrics {
    calls: IntCounterVec,
    errors: IntCounterVec,
    traps: IntCounterVec,
    timeouts: IntCounterVec,
    out_of_memory: IntCounterVec,
    restarts: IntCounterVec,
    memory: IntGaugeVec,
    state: IntGaugeVec,
    /// Call latency as seen by the caller (queueing for an instance included).
    pub call_duration: HistogramVec,
    /// Failed loads, by plugin.
    pub load_failures: IntCounterVec,
    readings: Arc<Mutex<HashMap<u64, Reading>>>,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for PluginMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginMetrics").finish_non_exhaustive()
    }
}

/// The counters of one tracked plugin at its last reading.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    calls: u64,
    errors: u64,
    traps: u64,
    timeouts: u64,
    out_of_memory: u64,
    restarts: u64,
}

impl Reading {
    fn of(status: &PluginStatus) -> Reading {
        Reading {
            calls: status.calls,
            errors: status.errors,
            traps: status.traps,
            timeouts: status.timeouts,
            out_of_memory: status.out_of_memory,
            restarts: status.restarts,
        }
    }
}

const LABELS: [&str; 2] = ["plugin", "kind"];

impl PluginMetrics {
    pub(super) fn new() -> Result<PluginMetrics, prometheus::Error> {
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &LABELS);
        Ok(PluginMetrics {
            calls: counter("ember_plugin_calls_total", "Calls made to the plugin.")?,
            errors: counter(
                "ember_plugin_errors_total",
                "Plugin calls that returned an error of any kind.",
            )?,
            traps: counter(
                "ember_plugin_traps_total",
                "Plugin calls and instantiations that trapped (panics, aborts, contract traps).",
            )?,
            timeouts: counter(
                "ember_plugin_timeouts_total",
                "Plugin calls that ran past the plugin's call_timeout.",
            )?,
            out_of_memory: counter(
                "ember_plugin_out_of_memory_total",
                "Plugin calls that hit the plugin's memory limit.",
            )?,
            restarts: counter(
                "ember_plugin_restarts_total",
                "Plugin instances started to replace failed ones.",
            )?,
            memory: IntGaugeVec::new(
                Opts::new(
                    "ember_plugin_memory_bytes",
                    "Linear memory held by the plugin's idle instances.",
                ),
                &LABELS,
            )?,
            state: IntGaugeVec::new(
                Opts::new(
                    "ember_plugin_state",
                    "1 for the plugin's current state (loading, ready, restarting, disabled, failed).",
                ),
                &["plugin", "kind", "state"],
            )?,
            call_duration: HistogramVec::new(
                HistogramOpts::new(
                    "ember_plugin_call_duration_seconds",
                    "Duration of plugin calls, as seen by the caller.",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &LABELS,
            )?,
            load_failures: IntCounterVec::new(
                Opts::new(
                    "ember_plugin_load_failures_total",
                    "Attempts to load the plugin that failed.",
                ),
                &["plugin"],
            )?,
            readings: Arc::new(Mutex::new(HashMap::new())),
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Starts counting `plugin`; returns its id.
    pub(super) fn track(&self, plugin: &Plugin) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Reading::default());
        let kind = plugin.kind().to_string();
        // Make the series visible at zero before the first call.
        for vec in self.counters() {
            vec.with_label_values(&[plugin.name(), &kind]);
        }
        self.call_duration
            .with_label_values(&[plugin.name(), &kind]);
        id
    }

    /// Takes a last reading of `plugin` and stops tracking it.
    pub(super) fn retire(&self, id: u64, plugin: &Plugin) {
        self.account(id, plugin);
        self.lock().remove(&id);
    }

    /// Adds what `plugin`'s counters gained since the last reading.
    fn account(&self, id: u64, plugin: &Plugin) {
        let status = plugin.status();
        let now = Reading::of(&status);
        let before = {
            let mut readings = self.lock();
            let Some(slot) = readings.get_mut(&id) else {
                return;
            };
            std::mem::replace(slot, now)
        };
        let labels = [plugin.name(), &plugin.kind().to_string()];
        let pairs = [
            (&self.calls, now.calls, before.calls),
            (&self.errors, now.errors, before.errors),
            (&self.traps, now.traps, before.traps),
            (&self.timeouts, now.timeouts, before.timeouts),
            (&self.out_of_memory, now.out_of_memory, before.out_of_memory),
            (&self.restarts, now.restarts, before.restarts),
        ];
        for (vec, now, before) in pairs {
            vec.with_label_values(&labels)
                .inc_by(now.saturating_sub(before));
        }
    }

    fn counters(&self) -> [&IntCounterVec; 6] {
        [
            &self.calls,
            &self.errors,
            &self.traps,
            &self.timeouts,
            &self.out_of_memory,
            &self.restarts,
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Reading>> {
        self.readings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `prometheus` collector: refreshes the readings and gauges from the
/// manager's plugins, then reports every vector.
pub(super) struct Collector {
    manager: Weak<PluginManager>,
    descs: Vec<Desc>,
}

impl Collector {
    pub(super) fn new(manager: Weak<PluginManager>) -> Collector {
        let descs = manager
            .upgrade()
            .map(|manager| {
                let metrics = &manager.metrics;
                let mut descs: Vec<Desc> = Vec::new();
                for collector in collectors(metrics) {
                    descs.extend(collector.desc().into_iter().cloned());
                }
                descs
            })
            .unwrap_or_default();
        Collector { manager, descs }
    }
}

fn collectors(metrics: &PluginMetrics) -> Vec<&dyn prometheus::core::Collector> {
    let mut out: Vec<&dyn prometheus::core::Collector> = metrics
        .counters()
        .into_iter()
        .map(|vec| vec as &dyn prometheus::core::Collector)
        .collect();
    out.push(&metrics.memory);
    out.push(&metrics.state);
    out.push(&metrics.call_duration);
    out.push(&metrics.load_failures);
    out
}

impl prometheus::core::Collector for Collector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(manager) = self.manager.upgrade() else {
            return Vec::new();
        };
        let metrics = &manager.metrics;
        let tracked = manager.tracked();
        for (id, plugin) in &tracked {
            metrics.account(*id, plugin);
        }
        // Gauges describe the declared plugins now: rebuilt from scratch so
        // that unloaded plugins disappear.
        metrics.memory.reset();
        metrics.state.reset();
        for report in manager.statuses() {
            metrics
                .memory
                .with_label_values(&[report.name.as_str(), report.kind])
                .set(i64::try_from(report.memory_bytes).unwrap_or(i64::MAX));
            metrics
                .state
                .with_label_values(&[report.name.as_str(), report.kind, report.state])
                .set(1);
        }
        collectors(metrics)
            .into_iter()
            .flat_map(|collector| collector.collect())
            .collect()
    }
}

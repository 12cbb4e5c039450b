//! The server's own metrics, served on `/metrics`.
//!
//! Everything here is registered in one [`prometheus::Registry`]: build
//! information, the standard process metrics (CPU, resident memory, open file
//! descriptors, start time — the same names every Prometheus client uses), the
//! state of configuration reloads, and HTTP request counts and latencies per
//! handler. Metric names use the `ember_` prefix where Prometheus uses
//! `prometheus_`, so dashboards for Prometheus need only that one change.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::version::BuildInfo;

/// Handles to the server's own metrics. Cheap to share behind an `Arc`; every
/// handle is internally synchronised.
#[derive(Debug, Clone)]
pub struct SelfMetrics {
    registry: Registry,
    /// 1 when the last configuration reload succeeded, else 0.
    pub config_last_reload_successful: IntGauge,
    /// Unix time of the last successful configuration reload.
    pub config_last_reload_success_timestamp_seconds: Gauge,
    /// 1 once the server is ready to serve queries.
    pub ready: IntGauge,
    /// Requests answered, by route and status code.
    pub http_requests_total: IntCounterVec,
    /// Time to answer a request, by route.
    pub http_request_duration_seconds: HistogramVec,
}

impl SelfMetrics {
    /// Creates and registers every metric.
    pub fn new(build: &BuildInfo) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();

        let build_info = IntGaugeVec::new(
            Opts::new(
                "ember_build_info",
                "A metric with a constant '1' value labeled by version, revision, branch, and rustversion from which ember was built.",
            ),
            &["version", "revision", "branch", "rustversion"],
        )?;
        build_info
            .with_label_values(&[
                build.version,
                build.revision,
                build.branch,
                build.rust_version,
            ])
            .set(1);
        registry.register(Box::new(build_info))?;

        let config_last_reload_successful = IntGauge::new(
            "ember_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )?;
        registry.register(Box::new(config_last_reload_successful.clone()))?;

        let config_last_reload_success_timestamp_seconds = Gauge::new(
            "ember_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        )?;
        registry.register(Box::new(
            config_last_reload_success_timestamp_seconds.clone(),
        ))?;

        let ready = IntGauge::new(
            "ember_ready",
            "Whether ember startup was fully completed and the server is ready for normal operation.",
        )?;
        registry.register(Box::new(ready.clone()))?;

        let http_requests_total = IntCounterVec::new(
            Opts::new("ember_http_requests_total", "Counter of HTTP requests."),
            &["handler", "code"],
        )?;
        registry.register(Box::new(http_requests_total.clone()))?;

        let http_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ember_http_request_duration_seconds",
                "Histogram of latencies for HTTP requests.",
            )
            .buckets(vec![0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0]),
            &["handler"],
        )?;
        registry.register(Box::new(http_request_duration_seconds.clone()))?;

        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            config_last_reload_successful,
            config_last_reload_success_timestamp_seconds,
            ready,
            http_requests_total,
            http_request_duration_seconds,
        })
    }

    /// The registry, for subsystems that register metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every metric in the Prometheus text format 0.0.4.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut buf = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::BUILD_INFO;

    #[test]
    fn renders_build_info_process_and_reload_metrics() {
        let m = SelfMetrics::new(&BUILD_INFO).unwrap();
        m.config_last_reload_successful.set(1);
        let text = String::from_utf8(m.render().unwrap()).unwrap();
        assert!(text.contains(&format!(
            "ember_build_info{{branch=\"{}\"",
            BUILD_INFO.branch
        )));
        assert!(text.contains("ember_config_last_reload_successful 1"));
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}

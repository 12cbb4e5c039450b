//! The queue metrics, named after Prometheus's
//! `prometheus_remote_storage_*` with the `ember_` prefix, labelled by
//! `remote_name` and `url`.

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

const LABELS: &[&str] = &["remote_name", "url"];

/// The metric families of every queue, registered once per registry.
#[derive(Debug, Clone)]
pub struct SenderMetrics {
    samples_total: IntCounterVec,
    samples_failed_total: IntCounterVec,
    samples_retried_total: IntCounterVec,
    samples_dropped_total: IntCounterVec,
    samples_pending: IntGaugeVec,
    metadata_total: IntCounterVec,
    metadata_failed_total: IntCounterVec,
    highest_timestamp: GaugeVec,
    highest_sent_timestamp: GaugeVec,
    shards: IntGaugeVec,
    shards_desired: GaugeVec,
    shards_max: IntGaugeVec,
    shards_min: IntGaugeVec,
    bytes_total: IntCounterVec,
    sent_batch_duration: HistogramVec,
    enqueue_retries_total: IntCounterVec,
}

impl SenderMetrics {
    /// Registers the families in `registry`.
    ///
    /// # Errors
    /// When a family of the same name is registered already.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), LABELS)?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), LABELS)?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        }
        fn fgauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), LABELS)?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        }
        let p = "ember_remote_storage_";
        let sent_batch_duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{p}sent_batch_duration_seconds"),
                "Duration of send calls to the remote storage.",
            )
            .buckets(prometheus::exponential_buckets(0.005, 2.5, 10)?),
            LABELS,
        )?;
        registry.register(Box::new(sent_batch_duration.clone()))?;
        Ok(Self {
            samples_total: counter(
                registry,
                &format!("{p}samples_total"),
                "Samples sent to remote storage.",
            )?,
            samples_failed_total: counter(
                registry,
                &format!("{p}samples_failed_total"),
                "Samples that failed to be sent to remote storage with a non-recoverable error.",
            )?,
            samples_retried_total: counter(
                registry,
                &format!("{p}samples_retried_total"),
                "Samples that failed to be sent with a recoverable error and were retried.",
            )?,
            samples_dropped_total: counter(
                registry,
                &format!("{p}samples_dropped_total"),
                "Samples read from the WAL and not sent: dropped by write_relabel_configs, of an unknown series, or older than sample_age_limit.",
            )?,
            samples_pending: gauge(
                registry,
                &format!("{p}samples_pending"),
                "Samples queued in shards, waiting to be sent.",
            )?,
            metadata_total: counter(
                registry,
                &format!("{p}metadata_total"),
                "Metadata entries sent to remote storage.",
            )?,
            metadata_failed_total: counter(
                registry,
                &format!("{p}metadata_failed_total"),
                "Metadata entries that failed to be sent with a non-recoverable error.",
            )?,
            highest_timestamp: fgauge(
                registry,
                &format!("{p}highest_timestamp_in_seconds"),
                "Highest timestamp the queue read from the WAL, in seconds since the epoch.",
            )?,
            highest_sent_timestamp: fgauge(
                registry,
                &format!("{p}queue_highest_sent_timestamp_seconds"),
                "Highest timestamp successfully sent by the queue, in seconds since the epoch.",
            )?,
            shards: gauge(
                registry,
                &format!("{p}shards"),
                "Shards sending in parallel.",
            )?,
            shards_desired: fgauge(
                registry,
                &format!("{p}shards_desired"),
                "Shards the queue would like to run, from the throughput calculation.",
            )?,
            shards_max: gauge(
                registry,
                &format!("{p}shards_max"),
                "The queue's max_shards.",
            )?,
            shards_min: gauge(
                registry,
                &format!("{p}shards_min"),
                "The queue's min_shards.",
            )?,
            bytes_total: counter(
                registry,
                &format!("{p}bytes_total"),
                "Compressed request bytes sent, including retries.",
            )?,
            sent_batch_duration,
            enqueue_retries_total: counter(
                registry,
                &format!("{p}enqueue_retries_total"),
                "Times the WAL watcher found a shard full and waited.",
            )?,
        })
    }

    /// The children for one queue.
    pub fn queue(&self, remote_name: &str, url: &str) -> QueueMetrics {
        let l = [remote_name, url];
        QueueMetrics {
            labels: [remote_name.to_owned(), url.to_owned()],
            families: self.clone(),
            samples_total: self.samples_total.with_label_values(&l),
            samples_failed_total: self.samples_failed_total.with_label_values(&l),
            samples_retried_total: self.samples_retried_total.with_label_values(&l),
            samples_dropped_total: self.samples_dropped_total.with_label_values(&l),
            samples_pending: self.samples_pending.with_label_values(&l),
            metadata_total: self.metadata_total.with_label_values(&l),
            metadata_failed_total: self.metadata_failed_total.with_label_values(&l),
            highest_timestamp: self.highest_timestamp.with_label_values(&l),
            highest_sent_timestamp: self.highest_sent_timestamp.with_label_values(&l),
            shards: self.shards.with_label_values(&l),
            shards_desired: self.shards_desired.with_label_values(&l),
            shards_max: self.shards_max.with_label_values(&l),
            shards_min: self.shards_min.with_label_values(&l),
            bytes_total: self.bytes_total.with_label_values(&l),
            sent_batch_duration: self.sent_batch_duration.with_label_values(&l),
            enqueue_retries_total: self.enqueue_retries_total.with_label_values(&l),
        }
    }
}

/// One queue's metrics.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct QueueMetrics {
    labels: [String; 2],
    families: SenderMetrics,
    pub samples_total: IntCounter,
    pub samples_failed_total: IntCounter,
    pub samples_retried_total: IntCounter,
    pub samples_dropped_total: IntCounter,
    pub samples_pending: IntGauge,
    pub metadata_total: IntCounter,
    pub metadata_failed_total: IntCounter,
    pub highest_timestamp: Gauge,
    pub highest_sent_timestamp: Gauge,
    pub shards: IntGauge,
    pub shards_desired: Gauge,
    pub shards_max: IntGauge,
    pub shards_min: IntGauge,
    pub bytes_total: IntCounter,
    pub sent_batch_duration: Histogram,
    pub enqueue_retries_total: IntCounter,
}

impl QueueMetrics {
    /// Metrics that go nowhere, for tests and benchmarks.
    pub fn unregistered() -> Self {
        SenderMetrics::register(&Registry::new())
            .expect("a fresh registry accepts every family")
            .queue("", "")
    }

    /// Removes this queue's series from every family (the queue is gone).
    pub fn remove(&self) {
        let l = [self.labels[0].as_str(), self.labels[1].as_str()];
        let f = &self.families;
        let _ = f.samples_total.remove_label_values(&l);
        let _ = f.samples_failed_total.remove_label_values(&l);
        let _ = f.samples_retried_total.remove_label_values(&l);
        let _ = f.samples_dropped_total.remove_label_values(&l);
        let _ = f.samples_pending.remove_label_values(&l);
        let _ = f.metadata_total.remove_label_values(&l);
        let _ = f.metadata_failed_total.remove_label_values(&l);
        let _ = f.highest_timestamp.remove_label_values(&l);
        let _ = f.highest_sent_timestamp.remove_label_values(&l);
        let _ = f.shards.remove_label_values(&l);
        let _ = f.shards_desired.remove_label_values(&l);
        let _ = f.shards_max.remove_label_values(&l);
        let _ = f.shards_min.remove_label_values(&l);
        let _ = f.bytes_total.remove_label_values(&l);
        let _ = f.sent_batch_duration.remove_label_values(&l);
        let _ = f.enqueue_retries_total.remove_label_values(&l);
    }
}

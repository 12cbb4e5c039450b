//! Decoded remote-write requests into an [`Appender`]: the receiver's
//! semantics, independent of HTTP.
//!
//! - **1.0** ([`append_v1`]) is all or nothing, as Prometheus's receiver:
//!   the first invalid series or rejected sample stops the request with
//!   [`WriteError::BadData`] and the caller rolls the appender back, so a
//!   400 answer means nothing of the request was written and the sender
//!   (which does not retry a 400) has lost exactly that request.
//! - **2.0** ([`append_v2`]) writes what it can, as the 2.0 specification's
//!   partial writes and Prometheus's receiver do: an invalid series or a
//!   rejected sample is skipped and reported in [`V2Outcome::rejected`],
//!   everything else is committed, and the answer (400 when anything was
//!   rejected) carries the exact counts of what was written in the
//!   `X-Prometheus-Remote-Write-*-Written` headers.
//!
//! In both, a storage failure ([`WriteError::Storage`]) stops the request
//! and means "retry" (5xx). Exemplars the storage does not keep, and
//! duplicate or out-of-order exemplars, are dropped without failing the
//! request (Prometheus does the same) and are not counted as written.
//! Native histograms are refused (Ember has no native histogram storage
//! yet): a 1.0 request carrying one is rejected whole, a 2.0 request has
//! them skipped and reported.
//!
//! ```
//! use ember_model::storage::{Appendable, MemStorage, Queryable};
//! use ember_remote::ingest::append_v1;
//! use ember_remote::prompb::{Label, Sample, TimeSeries, WriteRequest};
//!
//! let storage = MemStorage::new();
//! let request = WriteRequest {
//!     timeseries: vec![TimeSeries {
//!         labels: vec![Label { name: "__name__".into(), value: "up".into() }],
//!         samples: vec![Sample { value: 1.0, timestamp: 1_000 }],
//!         ..Default::default()
//!     }],
//!     metadata: vec![],
//! };
//! let mut app = storage.appender();
//! let stats = append_v1(app.as_mut(), &request)?;
//! app.commit()?;
//! assert_eq!(stats.samples, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ember_model::labels::{Labels, METRIC_NAME};
use ember_model::metadata::{Metadata, MetricType};
use ember_model::sample::Exemplar;
use ember_model::storage::{AppendError, Appender, SeriesRef, StorageError};

use crate::{prompb, writev2};

/// What was written (the 2.0 response headers' counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Float samples.
    pub samples: u64,
    /// Native histogram samples.
    pub histograms: u64,
    /// Exemplars.
    pub exemplars: u64,
}

/// Why a request (or, for 2.0, part of one) was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The request's data is invalid or conflicts with stored data; a
    /// retry cannot succeed (HTTP 400).
    #[error("{0}")]
    BadData(String),
    /// The storage failed; a retry may succeed (HTTP 500).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Options of the 2.0 conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2Options {
    /// For a sample with a start (created) timestamp before its own, also
    /// append a zero sample at the start timestamp, as Prometheus does
    /// with `--enable-feature=created-timestamp-zero-ingestion`, so that
    /// `rate` sees the counter's start. A zero sample that is out of order
    /// (the series already has later data) is silently skipped.
    pub start_timestamp_zero_samples: bool,
}

/// The result of a 2.0 request: what was written, and what was not.
#[derive(Debug, Default)]
pub struct V2Outcome {
    /// Counts of what the appender accepted.
    pub stats: WriteStats,
    /// One message per rejected series or sample (invalid labels,
    /// out-of-order samples, native histograms), in request order.
    pub rejected: Vec<String>,
    /// A storage failure that stopped the request; roll back and answer
    /// 5xx when set.
    pub storage_error: Option<StorageError>,
}

/// Builds a series' label set from name/value pairs, checking what the
/// remote-write specification requires of it. Empty values are dropped
/// (Prometheus treats a label with an empty value as absent).
fn series_labels<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Labels, String> {
    let pairs: Vec<(&str, &str)> = pairs.filter(|(_, v)| !v.is_empty()).collect();
    if let Some((_, v)) = pairs.iter().find(|(n, _)| n.is_empty()) {
        return Err(format!("empty label name (with value {v:?})"));
    }
    let labels = Labels::new(pairs).map_err(|e| e.to_string())?;
    if labels.is_empty() {
        return Err("empty label set".to_owned());
    }
    if !labels.has(METRIC_NAME) {
        return Err(format!("series {labels} has no metric name (__name__)"));
    }
    Ok(labels)
}

fn metric_type_v1(t: i32) -> MetricType {
    use prompb::metric_metadata::MetricType as P;
    match P::try_from(t).unwrap_or(P::Unknown) {
        P::Unknown => MetricType::Unknown,
        P::Counter => MetricType::Counter,
        P::Gauge => MetricType::Gauge,
        P::Histogram => MetricType::Histogram,
        P::Gaugehistogram => MetricType::GaugeHistogram,
        P::Summary => MetricType::Summary,
        P::Info => MetricType::Info,
        P::Stateset => MetricType::StateSet,
    }
}

fn metric_type_v2(t: i32) -> MetricType {
    use writev2::metadata::MetricType as P;
    match P::try_from(t).unwrap_or(P::Unspecified) {
        P::Unspecified => MetricType::Unknown,
        P::Counter => MetricType::Counter,
        P::Gauge => MetricType::Gauge,
        P::Histogram => MetricType::Histogram,
        P::Gaugehistogram => MetricType::GaugeHistogram,
        P::Summary => MetricType::Summary,
        P::Info => MetricType::Info,
        P::Stateset => MetricType::StateSet,
    }
}

/// Converts our model's metric type to the 1.0 enum (for senders).
pub fn metric_type_to_v1(t: MetricType) -> prompb::metric_metadata::MetricType {
    use prompb::metric_metadata::MetricType as P;
    match t {
        MetricType::Counter => P::Counter,
        MetricType::Gauge => P::Gauge,
        MetricType::Histogram => P::Histogram,
        MetricType::GaugeHistogram => P::Gaugehistogram,
        MetricType::Summary => P::Summary,
        MetricType::Info => P::Info,
        MetricType::StateSet => P::Stateset,
        MetricType::Unknown => P::Unknown,
    }
}

/// Appends an exemplar, dropping it (returning `Ok(false)`) for the
/// rejections Prometheus ignores; only a storage failure is an error.
fn append_exemplar(
    app: &mut dyn Appender,
    series: Option<SeriesRef>,
    labels: &Labels,
    exemplar: Exemplar,
) -> Result<bool, StorageError> {
    match app.append_exemplar(series, labels, &exemplar) {
        Ok(_) => Ok(true),
        Err(AppendError::Storage(e)) => Err(e),
        Err(_) => Ok(false),
    }
}

/// Appends a 1.0 request. On `Err` the caller must roll the appender back
/// (see the [module docs](self)); on `Ok` it commits. Metric-family
/// metadata of a 1.0 request is not attached to series (it names a family,
/// not a series; Prometheus's receiver ignores it too).
pub fn append_v1(
    app: &mut dyn Appender,
    request: &prompb::WriteRequest,
) -> Result<WriteStats, WriteError> {
    let mut stats = WriteStats::default();
    for ts in &request.timeseries {
        let labels = series_labels(
            ts.labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        )
        .map_err(|e| WriteError::BadData(format!("invalid series: {e}")))?;
        if !ts.histograms.is_empty() {
            return Err(WriteError::BadData(format!(
                "native histograms are not supported: {} histogram samples for {labels}",
                ts.histograms.len()
            )));
        }
        let mut series = None;
        for s in &ts.samples {
            match app.append(series, &labels, s.timestamp, s.value) {
                Ok(r) => {
                    series = Some(r);
                    stats.samples += 1;
                }
                Err(AppendError::Storage(e)) => return Err(WriteError::Storage(e)),
                Err(e) => return Err(WriteError::BadData(e.to_string())),
            }
        }
        for e in &ts.exemplars {
            let exemplar_labels = Labels::new(
                e.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            )
            .map_err(|err| WriteError::BadData(format!("invalid exemplar labels: {err}")))?;
            let exemplar = Exemplar {
                labels: exemplar_labels,
                value: e.value,
                ts: Some(e.timestamp),
            };
            if append_exemplar(app, series, &labels, exemplar)? {
                stats.exemplars += 1;
            }
        }
    }
    Ok(stats)
}

/// Resolves alternating name/value symbol refs.
fn resolve_refs<'a>(
    symbols: &'a [String],
    refs: &[u32],
) -> Result<Vec<(&'a str, &'a str)>, String> {
    if !refs.len().is_multiple_of(2) {
        return Err(format!("odd number of label refs ({})", refs.len()));
    }
    let symbol = |r: u32| {
        symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
            format!(
                "label ref {r} outside the symbol table of {}",
                symbols.len()
            )
        })
    };
    refs.chunks_exact(2)
        .map(|p| Ok((symbol(p[0])?, symbol(p[1])?)))
        .collect()
}

/// Appends a 2.0 request (see the [module docs](self)). The caller commits
/// unless [`V2Outcome::storage_error`] is set.
pub fn append_v2(
    app: &mut dyn Appender,
    request: &writev2::Request,
    options: V2Options,
) -> V2Outcome {
    let mut out = V2Outcome::default();
    let symbols = &request.symbols;
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        out.rejected.push(format!(
            "symbols[0] must be the empty string, got {:?}; request ignored",
            symbols[0]
        ));
        return out;
    }
    for ts in &request.timeseries {
        let labels = match resolve_refs(symbols, &ts.labels_refs)
            .and_then(|p| series_labels(p.into_iter()))
        {
            Ok(l) => l,
            Err(e) => {
                out.rejected.push(format!(
                    "invalid series (labels_refs {:?}): {e}; {} samples, {} histograms dropped",
                    ts.labels_refs,
                    ts.samples.len(),
                    ts.histograms.len()
                ));
                continue;
            }
        };
        let mut series = None;
        for s in &ts.samples {
            if options.start_timestamp_zero_samples
                && s.start_timestamp != 0
                && s.start_timestamp < s.timestamp
            {
                match app.append(series, &labels, s.start_timestamp, 0.0) {
                    Ok(r) => series = Some(r),
                    Err(AppendError::Storage(e)) => {
                        out.storage_error = Some(e);
                        return out;
                    }
                    Err(_) => {}
                }
            }
            match app.append(series, &labels, s.timestamp, s.value) {
                Ok(r) => {
                    series = Some(r);
                    out.stats.samples += 1;
                }
                Err(AppendError::Storage(e)) => {
                    out.storage_error = Some(e);
                    return out;
                }
                Err(e) => out.rejected.push(e.to_string()),
            }
        }
        if !ts.histograms.is_empty() {
            out.rejected.push(format!(
                "native histograms are not supported: {} histogram samples for {labels} dropped",
                ts.histograms.len()
            ));
        }
        for e in &ts.exemplars {
            let Ok(exemplar_labels) = resolve_refs(symbols, &e.labels_refs)
                .and_then(|p| Labels::new(p).map_err(|err| err.to_string()))
            else {
                continue;
            };
            let exemplar = Exemplar {
                labels: exemplar_labels,
                value: e.value,
                ts: Some(e.timestamp),
            };
            match append_exemplar(app, series, &labels, exemplar) {
                Ok(true) => out.stats.exemplars += 1,
                Ok(false) => {}
                Err(e) => {
                    out.storage_error = Some(e);
                    return out;
                }
            }
        }
        if let Some(m) = &ts.metadata {
            let help = symbols.get(m.help_ref as usize);
            let unit = symbols.get(m.unit_ref as usize);
            let metric_type = metric_type_v2(m.r#type);
            if metric_type != MetricType::Unknown
                || help.is_some_and(|h| !h.is_empty())
                || unit.is_some_and(|u| !u.is_empty())
            {
                let metadata = Metadata::new(
                    metric_type,
                    help.cloned().unwrap_or_default(),
                    unit.cloned().unwrap_or_default(),
                );
                // Metadata is advisory: a refusal (say, a rejected series)
                // is not worth failing the samples for.
                if let Err(AppendError::Storage(e)) =
                    app.update_metadata(series, &labels, &metadata)
                {
                    out.storage_error = Some(e);
                    return out;
                }
            }
        }
    }
    out
}

/// The 1.0 metric type of a metadata entry, for tests and senders.
pub fn metadata_from_v1(m: &prompb::MetricMetadata) -> Metadata {
    Metadata::new(metric_type_v1(m.r#type), m.help.clone(), m.unit.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_model::matcher::Matcher;
    use ember_model::storage::{Appendable, MemStorage, Queryable, collect_samples};

    fn ts(name: &str, samples: &[(i64, f64)]) -> prompb::TimeSeries {
        prompb::TimeSeries {
            labels: vec![
                prompb::Label {
                    name: "__name__".into(),
                    value: name.into(),
                },
                prompb::Label {
                    name: "job".into(),
                    value: "j".into(),
                },
            ],
            samples: samples
                .iter()
                .map(|&(timestamp, value)| prompb::Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    fn stored(storage: &MemStorage, name: &str) -> Vec<(i64, f64)> {
        let q = storage.querier(i64::MIN, i64::MAX).unwrap();
        let mut set = q
            .select(true, None, &[Matcher::equal("__name__", name)])
            .unwrap();
        let mut out = vec![];
        for s in set.by_ref() {
            let s = s.unwrap();
            out.extend(
                collect_samples(s.samples().as_mut())
                    .unwrap()
                    .iter()
                    .map(|s| (s.t, s.v)),
            );
        }
        out
    }

    fn v1(storage: &MemStorage, request: &prompb::WriteRequest) -> Result<WriteStats, WriteError> {
        let mut app = storage.appender();
        match append_v1(app.as_mut(), request) {
            Ok(stats) => {
                app.commit().unwrap();
                Ok(stats)
            }
            Err(e) => {
                app.rollback().unwrap();
                Err(e)
            }
        }
    }

    #[test]
    fn v1_is_all_or_nothing() {
        let storage = MemStorage::new();
        let first = prompb::WriteRequest {
            timeseries: vec![ts("a", &[(1_000, 1.0), (2_000, 2.0)])],
            metadata: vec![],
        };
        assert_eq!(v1(&storage, &first).unwrap().samples, 2);
        // b is fine, but a's sample is out of order: nothing of the request
        // may be stored.
        let second = prompb::WriteRequest {
            timeseries: vec![ts("b", &[(1_000, 5.0)]), ts("a", &[(1_500, 9.0)])],
            metadata: vec![],
        };
        let err = v1(&storage, &second).unwrap_err();
        assert!(
            matches!(err, WriteError::BadData(ref m) if m.contains("out of order")),
            "{err}"
        );
        assert!(stored(&storage, "b").is_empty());
        assert_eq!(stored(&storage, "a"), vec![(1_000, 1.0), (2_000, 2.0)]);
    }

    #[test]
    fn v1_refuses_series_without_name_or_with_duplicate_labels() {
        let storage = MemStorage::new();
        let mut no_name = ts("a", &[(1, 1.0)]);
        no_name.labels.remove(0);
        let mut dup = ts("a", &[(1, 1.0)]);
        dup.labels.push(prompb::Label {
            name: "job".into(),
            value: "k".into(),
        });
        for bad in [no_name, dup] {
            let request = prompb::WriteRequest {
                timeseries: vec![bad],
                metadata: vec![],
            };
            assert!(matches!(
                v1(&storage, &request),
                Err(WriteError::BadData(_))
            ));
        }
        let mut hist = ts("h", &[]);
        hist.histograms.push(prompb::Histogram::default());
        let request = prompb::WriteRequest {
            timeseries: vec![hist],
            metadata: vec![],
        };
        let err = v1(&storage, &request).unwrap_err();
        assert!(err.to_string().contains("native histograms"), "{err}");
    }

    #[test]
    fn v2_writes_the_valid_part_and_reports_the_rest() {
        let storage = MemStorage::new();
        let symbols: Vec<String> = ["", "__name__", "a", "job", "j", "counter help", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let sample = |t: i64, v: f64| writev2::Sample {
            value: v,
            timestamp: t,
            start_timestamp: 0,
        };
        let request = writev2::Request {
            symbols,
            timeseries: vec![
                writev2::TimeSeries {
                    labels_refs: vec![1, 2, 3, 4],
                    samples: vec![sample(1_000, 1.0), sample(2_000, 2.0)],
                    metadata: Some(writev2::Metadata {
                        r#type: 1,
                        help_ref: 5,
                        unit_ref: 0,
                    }),
                    ..Default::default()
                },
                // A ref past the symbol table.
                writev2::TimeSeries {
                    labels_refs: vec![1, 99],
                    samples: vec![sample(1_000, 1.0)],
                    ..Default::default()
                },
                // Out of order within the series: the second sample only.
                writev2::TimeSeries {
                    labels_refs: vec![1, 6],
                    samples: vec![sample(2_000, 1.0), sample(1_000, 1.0)],
                    ..Default::default()
                },
            ],
        };
        let mut app = storage.appender();
        let outcome = append_v2(app.as_mut(), &request, V2Options::default());
        app.commit().unwrap();
        assert!(outcome.storage_error.is_none());
        assert_eq!(outcome.stats.samples, 3);
        assert_eq!(outcome.rejected.len(), 2, "{:?}", outcome.rejected);
        assert!(outcome.rejected[0].contains("label ref 99"));
        assert!(outcome.rejected[1].contains("out of order"));
        assert_eq!(stored(&storage, "a"), vec![(1_000, 1.0), (2_000, 2.0)]);
        assert_eq!(stored(&storage, "b"), vec![(2_000, 1.0)]);
    }

    #[test]
    fn v2_start_timestamp_adds_a_zero_sample_when_enabled() {
        let request = writev2::Request {
            symbols: vec!["".into(), "__name__".into(), "c".into()],
            timeseries: vec![writev2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![
                    writev2::Sample {
                        value: 5.0,
                        timestamp: 10_000,
                        start_timestamp: 4_000,
                    },
                    writev2::Sample {
                        value: 7.0,
                        timestamp: 20_000,
                        start_timestamp: 4_000,
                    },
                ],
                ..Default::default()
            }],
        };
        for (enabled, want) in [
            (false, vec![(10_000, 5.0), (20_000, 7.0)]),
            (true, vec![(4_000, 0.0), (10_000, 5.0), (20_000, 7.0)]),
        ] {
            let storage = MemStorage::new();
            let mut app = storage.appender();
            let options = V2Options {
                start_timestamp_zero_samples: enabled,
            };
            let outcome = append_v2(app.as_mut(), &request, options);
            app.commit().unwrap();
            assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
            assert_eq!(outcome.stats.samples, 2);
            assert_eq!(stored(&storage, "c"), want);
        }
    }

    #[test]
    fn v2_refuses_a_symbol_table_not_starting_with_empty() {
        let storage = MemStorage::new();
        let request = writev2::Request {
            symbols: vec!["__name__".into(), "x".into()],
            timeseries: vec![writev2::TimeSeries {
                labels_refs: vec![0, 1],
                samples: vec![writev2::Sample {
                    value: 1.0,
                    timestamp: 1,
                    start_timestamp: 0,
                }],
                ..Default::default()
            }],
        };
        let mut app = storage.appender();
        let outcome = append_v2(app.as_mut(), &request, V2Options::default());
        assert_eq!(outcome.stats.samples, 0);
        assert_eq!(outcome.rejected.len(), 1);
    }
}

//! `/api/v1/status/*`: what the server runs with: `config`, `flags`,
//! `buildinfo`, `runtimeinfo` and `tsdb` (cardinality statistics), in
//! Prometheus's shapes. Go-specific fields keep their names, with the
//! closest Rust meaning (`goVersion` is the compiler's version,
//! `goroutineCount` the tokio tasks alive, `GOMAXPROCS` the usable cores).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use ember_model::labels::METRIC_NAME;
use ember_model::storage::{Annotations, Storage};
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::api::{ApiError, success_json};
use super::params::{Params, Time, format_rfc3339_nanos, parse_go_int};
use crate::version::BUILD_INFO;

/// `GET /api/v1/status/config`: the configuration in force, as YAML. After a
/// refused reload this still shows the configuration that is running.
pub(super) async fn config(State(state): State<AppState>) -> Json<Value> {
    let config = state.config.current();
    Json(json!({ "status": "success", "data": { "yaml": config.source.text } }))
}

/// `GET /api/v1/status/flags`: every flag and its value, as strings.
pub(super) async fn flags(State(state): State<AppState>) -> Result<Response, ApiError> {
    let flags: BTreeMap<&str, String> = state.flags.as_pairs().into_iter().collect();
    success_json(&flags, &Annotations::new())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: &'static str,
}

/// `GET /api/v1/status/buildinfo`.
pub(super) async fn build_info() -> Result<Response, ApiError> {
    let info = BuildInfo {
        version: BUILD_INFO.version,
        revision: BUILD_INFO.revision,
        branch: BUILD_INFO.branch,
        // Not recorded by the build; Prometheus's is `user@host`.
        build_user: "",
        build_date: BUILD_INFO.build_date,
        go_version: BUILD_INFO.rust_version,
    };
    success_json(&info, &Annotations::new())
}

/// Prometheus's `RuntimeInfo`, field for field and in its order.
#[derive(Debug, Serialize)]
struct RuntimeInfo {
    #[serde(rename = "startTime")]
    start_time: String,
    #[serde(rename = "CWD")]
    cwd: String,
    hostname: String,
    #[serde(rename = "serverTime")]
    server_time: String,
    #[serde(rename = "reloadConfigSuccess")]
    reload_config_success: bool,
    #[serde(rename = "lastConfigTime")]
    last_config_time: String,
    #[serde(rename = "corruptionCount")]
    corruption_count: i64,
    #[serde(rename = "goroutineCount")]
    goroutine_count: usize,
    #[serde(rename = "GOMAXPROCS")]
    gomaxprocs: usize,
    #[serde(rename = "GOGC")]
    gogc: &'static str,
    #[serde(rename = "GODEBUG")]
    godebug: &'static str,
    #[serde(rename = "storageRetention")]
    storage_retention: String,
}

/// `GET /api/v1/status/runtimeinfo`.
pub(super) async fn runtime_info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let last_reload_seconds = state
        .metrics
        .config_last_reload_success_timestamp_seconds
        .get();
    let last_config_time = if last_reload_seconds > 0.0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(last_reload_seconds)
    } else {
        SystemTime::UNIX_EPOCH
    };
    let info = RuntimeInfo {
        start_time: format_rfc3339_nanos(state.started),
        cwd: std::env::current_dir()
            .map(|dir| dir.display().to_string())
            .unwrap_or_else(|error| {
                format!("<error retrieving current working directory: {error}>")
            }),
        hostname: hostname(),
        server_time: format_rfc3339_nanos(SystemTime::now()),
        reload_config_success: state.metrics.config_last_reload_successful.get() == 1,
        last_config_time: format_rfc3339_nanos(last_config_time),
        corruption_count: 0,
        goroutine_count: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        gomaxprocs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gogc: "",
        godebug: "",
        // Prometheus lists its time and size limits here ("15d or 512MiB");
        // the storage in this build keeps everything it is given.
        storage_retention: String::new(),
    };
    success_json(&info, &Annotations::new())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// The most entries `/status/tsdb` lists per statistic.
const MAX_TSDB_LIMIT: i64 = 10_000;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadStats {
    num_series: u64,
    num_label_pairs: usize,
    chunk_count: i64,
    min_time: i64,
    max_time: i64,
}

#[derive(Debug, Serialize)]
struct Stat {
    name: String,
    value: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TsdbStatus {
    head_stats: HeadStats,
    series_count_by_metric_name: Vec<Stat>,
    label_value_count_by_label_name: Vec<Stat>,
    memory_in_bytes_by_label_name: Vec<Stat>,
    series_count_by_label_value_pair: Vec<Stat>,
}

/// `GET /api/v1/status/tsdb?limit=`: series and label cardinality of the
/// stored data, the top `limit` (default 10) entries of each statistic.
pub(super) async fn tsdb(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = match params.value("limit") {
        "" => 10,
        text => match parse_go_int(text) {
            Ok(limit) if (1..=MAX_TSDB_LIMIT).contains(&limit) => limit,
            Ok(limit) if limit > MAX_TSDB_LIMIT => {
                return Err(ApiError::bad_data(format!(
                    "limit must not exceed {MAX_TSDB_LIMIT}"
                )));
            }
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        },
    };
    let limit = usize::try_from(limit).unwrap_or(10);
    let storage = state.storage.clone();
    let status = tokio::task::spawn_blocking(move || tsdb_status(storage.as_ref(), limit))
        .await
        .map_err(|e| ApiError::internal(format!("unexpected error: {e}")))??;
    success_json(&status, &Annotations::new())
}

/// Reads every series once: labels for the cardinality statistics, first
/// and last samples for the time range. The storage traits expose no
/// chunk count, so `chunkCount` is 0.
fn tsdb_status(storage: &dyn Storage, limit: usize) -> Result<TsdbStatus, ApiError> {
    let querier = storage.querier(Time::MIN.millis(), Time::MAX.millis())?;
    let mut num_series = 0u64;
    let mut min_time = i64::MAX;
    let mut max_time = i64::MIN;
    let mut by_metric: HashMap<String, u64> = HashMap::new();
    let mut by_pair: HashMap<(String, String), u64> = HashMap::new();
    let mut set = querier.select(false, None, &[])?;
    for series in set.by_ref() {
        let series = series?;
        num_series += 1;
        let labels = series.labels();
        if let Some(name) = labels.get(METRIC_NAME) {
            *by_metric.entry(name.to_owned()).or_default() += 1;
        }
        for (name, value) in labels.iter() {
            *by_pair
                .entry((name.to_owned(), value.to_owned()))
                .or_default() += 1;
        }
        let mut samples = series.samples();
        if samples.next() {
            min_time = min_time.min(samples.at().t);
            let mut last = samples.at().t;
            while samples.next() {
                last = samples.at().t;
            }
            max_time = max_time.max(last);
        }
        if let Some(error) = samples.err() {
            return Err(error.clone().into());
        }
    }
    let mut values_by_name: HashMap<&str, (u64, u64)> = HashMap::new();
    for (name, value) in by_pair.keys() {
        let entry = values_by_name.entry(name).or_default();
        entry.0 += 1;
        entry.1 += value.len() as u64;
    }
    let top = |entries: Vec<(String, u64)>| -> Vec<Stat> {
        let mut entries = entries;
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(limit);
        entries
            .into_iter()
            .map(|(name, value)| Stat { name, value })
            .collect()
    };
    let label_value_counts = top(values_by_name
        .iter()
        .map(|(name, (count, _))| ((*name).to_owned(), *count))
        .collect());
    let memory = top(values_by_name
        .iter()
        .map(|(name, (_, bytes))| ((*name).to_owned(), *bytes))
        .collect());
    Ok(TsdbStatus {
        head_stats: HeadStats {
            num_series,
            num_label_pairs: by_pair.len(),
            chunk_count: 0,
            min_time,
            max_time,
        },
        series_count_by_metric_name: top(by_metric.into_iter().collect()),
        label_value_count_by_label_name: label_value_counts,
        memory_in_bytes_by_label_name: memory,
        series_count_by_label_value_pair: top(by_pair
            .iter()
            .map(|((name, value), count)| (format!("{name}={value}"), *count))
            .collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_model::labels::Labels;
    use ember_model::storage::{Appendable, MemStorage};

    #[test]
    fn tsdb_status_counts_series_and_label_cardinality() {
        let storage = MemStorage::new();
        let mut app = storage.appender();
        for (name, job, t) in [
            ("up", "a", 1_000),
            ("up", "b", 2_000),
            ("go_info", "a", 500),
        ] {
            let labels = Labels::new([("__name__", name), ("job", job)]).unwrap();
            app.append(None, &labels, t, 1.0).unwrap();
            app.append(None, &labels, t + 10_000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let status = tsdb_status(&storage, 10).unwrap();
        assert_eq!(status.head_stats.num_series, 3);
        assert_eq!(status.head_stats.num_label_pairs, 4);
        assert_eq!(status.head_stats.min_time, 500);
        assert_eq!(status.head_stats.max_time, 12_000);
        let pairs = |stats: &[Stat]| -> Vec<(String, u64)> {
            stats.iter().map(|s| (s.name.clone(), s.value)).collect()
        };
        assert_eq!(
            pairs(&status.series_count_by_metric_name),
            [("up".to_owned(), 2), ("go_info".to_owned(), 1)]
        );
        assert_eq!(
            pairs(&status.label_value_count_by_label_name),
            [("__name__".to_owned(), 2), ("job".to_owned(), 2)]
        );
        assert_eq!(
            pairs(&status.memory_in_bytes_by_label_name),
            [("__name__".to_owned(), 9), ("job".to_owned(), 2)]
        );
        assert_eq!(
            status.series_count_by_label_value_pair[0].name,
            "__name__=up"
        );
        assert_eq!(status.series_count_by_label_value_pair[0].value, 2);

        let limited = tsdb_status(&storage, 1).unwrap();
        assert_eq!(limited.series_count_by_label_value_pair.len(), 1);

        let empty = tsdb_status(&MemStorage::new(), 10).unwrap();
        assert_eq!(empty.head_stats.num_series, 0);
        assert_eq!(empty.head_stats.min_time, i64::MAX);
        assert_eq!(empty.head_stats.max_time, i64::MIN);
    }
}

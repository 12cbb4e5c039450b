//! `/api/v1/metadata` and `/api/v1/targets/metadata`: metric metadata
//! (type, help, unit) as the scrape targets last exposed it.
//!
//! Prometheus answers both from its scrape targets' metadata caches, not
//! from storage, and so does Ember: [`crate::scrape::target::Target::metadata`]
//! holds what each target's last successful scrape declared. Targets are
//! visited by job, then in each pool's order, and metric names in order,
//! so answers are deterministic (Prometheus's follow Go's map order).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use ember_model::labels::Labels;
use ember_model::metadata::{Metadata, MetricType};
use ember_model::storage::Annotations;
use serde::Serialize;

use super::AppState;
use super::api::{ApiError, success_json};
use super::params::{Params, parse_go_int, parse_selector};

/// A numeric parameter where absent means "no limit" (`-1`) and any
/// non-number is refused with `"<name> must be a number"`.
fn optional_limit(params: &Params, name: &str) -> Result<i64, ApiError> {
    match params.value(name) {
        "" => Ok(-1),
        text => {
            parse_go_int(text).map_err(|_| ApiError::bad_data(format!("{name} must be a number")))
        }
    }
}

/// Whether `count` entries already reach `limit` (`-1` is unlimited).
fn reached(limit: i64, count: usize) -> bool {
    limit >= 0 && i64::try_from(count).unwrap_or(i64::MAX) >= limit
}

/// `GET /api/v1/metadata?metric=&limit=&limit_per_metric=`: every metric
/// name with its distinct metadata across targets.
pub(super) async fn metric_metadata(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = optional_limit(&params, "limit")?;
    let limit_per_metric = optional_limit(&params, "limit_per_metric")?;
    let metric = params.value("metric");

    let mut metrics: BTreeMap<String, Vec<Metadata>> = BTreeMap::new();
    for pool in state.scrape.targets().await {
        for target in &pool.active {
            for (name, metadata) in target.metadata() {
                if !metric.is_empty() && name != metric {
                    continue;
                }
                let known = metrics.entry(name).or_default();
                if limit_per_metric > 0 && reached(limit_per_metric, known.len()) {
                    continue;
                }
                if !known.contains(&metadata) {
                    known.push(metadata);
                }
            }
        }
    }
    // Families pushed over OTLP have no target; their metadata is what the
    // receiver recorded.
    for (name, metadata) in state.otlp.metadata() {
        if !metric.is_empty() && name != metric {
            continue;
        }
        let known = metrics.entry(name).or_default();
        let full = limit_per_metric > 0 && reached(limit_per_metric, known.len());
        if !full && !known.contains(&metadata) {
            known.push(metadata);
        }
    }
    let limited: BTreeMap<String, Vec<Metadata>> = metrics
        .into_iter()
        .enumerate()
        .take_while(|(index, _)| !reached(limit, *index))
        .map(|(_, entry)| entry)
        .collect();
    success_json(&limited, &Annotations::new())
}

/// One entry of `/api/v1/targets/metadata`.
#[derive(Debug, Serialize)]
struct TargetMetadata {
    target: Labels,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<String>,
    #[serde(rename = "type")]
    metric_type: MetricType,
    help: String,
    unit: String,
}

/// `GET /api/v1/targets/metadata?match_target=&metric=&limit=`: metadata
/// per target; `limit` bounds the number of targets visited once entries
/// reach it, as in Prometheus.
pub(super) async fn target_metadata(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = optional_limit(&params, "limit")?;
    let match_target = params.value("match_target");
    let matchers = if match_target.is_empty() {
        Vec::new()
    } else {
        parse_selector(match_target).map_err(|e| ApiError::invalid_param("match_target", e))?
    };
    let metric = params.value("metric");

    let mut entries = Vec::new();
    for pool in state.scrape.targets().await {
        for target in &pool.active {
            if reached(limit, entries.len()) {
                break;
            }
            let labels = target.labels();
            if !matchers.iter().all(|m| m.matches_labels(&labels)) {
                continue;
            }
            let metadata = target.metadata();
            if metric.is_empty() {
                entries.extend(metadata.into_iter().map(|(name, md)| TargetMetadata {
                    target: labels.clone(),
                    metric: Some(name),
                    metric_type: md.metric_type,
                    help: md.help,
                    unit: md.unit,
                }));
            } else if let Some(md) = metadata.get(metric) {
                entries.push(TargetMetadata {
                    target: labels.clone(),
                    metric: None,
                    metric_type: md.metric_type,
                    help: md.help.clone(),
                    unit: md.unit.clone(),
                });
            }
        }
    }
    success_json(&entries, &Annotations::new())
}

//! `GET /federate?match[]=<selector>...`: the newest sample of every matching
//! series, in the text exposition format, for another server to scrape.
//!
//! As in Prometheus: a series contributes its latest sample within the
//! lookback delta (5 minutes) before now, staleness markers excluded; series
//! are grouped by metric name into untyped families, sorted; the global
//! `external_labels` are added to every series that lacks them; each sample
//! carries its own timestamp so the scraping side keeps it (with
//! `honor_timestamps`, the default).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_model::exposition::{FamilySample, MetricFamily, MetricType, write_text};
use ember_model::labels::METRIC_NAME;
use ember_model::sample::is_stale_nan;

use super::AppState;
use super::params::{Params, parse_match_params};

/// How far back a series' latest sample may lie (Prometheus's default
/// lookback delta).
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

pub(super) async fn federate(State(state): State<AppState>, params: Params) -> Response {
    let selectors = params.values("match[]");
    let matcher_sets = match parse_match_params(&selectors) {
        Ok(sets) if !sets.is_empty() => sets,
        Ok(_) => {
            return (StatusCode::BAD_REQUEST, "no match[] parameter provided\n").into_response();
        }
        Err(error) => return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
    };
    let external_labels = state.config.current().global.external_labels.clone();
    let storage = state.storage.clone();
    let rendered =
        tokio::task::spawn_blocking(move || render(&*storage, &matcher_sets, &external_labels))
            .await;
    match rendered {
        Ok(Ok(body)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Ok(Err(error)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("federation failed: {error}\n"),
        )
            .into_response(),
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

fn render(
    storage: &dyn ember_model::storage::Storage,
    matcher_sets: &[Vec<ember_model::matcher::Matcher>],
    external_labels: &BTreeMap<String, String>,
) -> Result<String, ember_model::storage::StorageError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let querier = storage.querier(now - LOOKBACK_MS, now)?;
    // Several match[] may select the same series; a map by labels keeps one.
    let mut latest: BTreeMap<ember_model::labels::Labels, (i64, f64)> = BTreeMap::new();
    for matchers in matcher_sets {
        let set = querier.select(true, None, matchers)?;
        for series in set {
            let series = series?;
            let mut samples = series.samples();
            let mut last = None;
            while samples.next() {
                let sample = samples.at();
                last = Some((sample.t, sample.v));
            }
            if let Some(error) = samples.err() {
                return Err(error.clone());
            }
            if let Some((t, v)) = last
                && !is_stale_nan(v)
            {
                latest.insert(series.labels().clone(), (t, v));
            }
        }
    }

    // Grouped by metric name explicitly: label-set order alone would not
    // keep a name's series together when other label names sort first.
    let mut by_name: BTreeMap<&str, Vec<FamilySample>> = BTreeMap::new();
    for (labels, (t, v)) in &latest {
        let Some(name) = labels.metric_name() else {
            continue;
        };
        let mut pairs: Vec<(&str, &str)> =
            labels.iter().filter(|(n, _)| *n != METRIC_NAME).collect();
        for (label, value) in external_labels {
            if !labels.has(label) {
                pairs.push((label, value));
            }
        }
        pairs.sort_unstable();
        let mut sample = FamilySample::new(name, pairs, *v);
        sample.timestamp_ms = Some(*t);
        by_name.entry(name).or_default().push(sample);
    }
    let families: Vec<MetricFamily> = by_name
        .into_iter()
        .map(|(name, samples)| MetricFamily {
            name: name.to_owned(),
            metric_type: MetricType::Unknown,
            help: None,
            unit: None,
            samples,
        })
        .collect();
    let mut out = String::new();
    write_text(&mut out, &families);
    Ok(out)
}

//! `/api/v1/targets` and `/api/v1/scrape_pools`, shaped as Prometheus's.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::scrape::target::{Health, Target};

#[derive(Debug, Deserialize)]
pub(super) struct TargetsQuery {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

/// `GET /api/v1/targets?state=active|dropped|any&scrapePool=<job>`.
pub(super) async fn targets(
    State(state): State<AppState>,
    Query(query): Query<TargetsQuery>,
) -> Json<Value> {
    let (show_active, show_dropped) = match query
        .state
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("any") => (true, true),
        Some("active") => (true, false),
        Some("dropped") => (false, true),
        // Prometheus answers an unknown state with nothing rather than an
        // error; keep that so scripts behave the same.
        Some(_) => (false, false),
    };
    let pools = state.scrape.targets().await;
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts = BTreeMap::new();
    for pool in pools
        .iter()
        .filter(|p| query.scrape_pool.as_ref().is_none_or(|want| *want == p.job))
    {
        if show_active {
            active.extend(pool.active.iter().map(|t| active_target(&pool.job, t)));
        }
        if show_dropped {
            dropped.extend(
                pool.dropped
                    .iter()
                    .map(|d| json!({ "discoveredLabels": d.discovered, "scrapePool": pool.job })),
            );
            dropped_counts.insert(pool.job.clone(), pool.dropped_total);
        }
    }
    let mut data = serde_json::Map::new();
    if show_active || query.state.is_none() {
        data.insert("activeTargets".into(), Value::Array(active));
    }
    if show_dropped || query.state.is_none() {
        data.insert("droppedTargets".into(), Value::Array(dropped));
        data.insert("droppedTargetCounts".into(), json!(dropped_counts));
    }
    Json(json!({ "status": "success", "data": data }))
}

fn active_target(job: &str, target: &Target) -> Value {
    let status = target.status();
    let last_scrape = match status.last_scrape {
        Some(time) => humantime::format_rfc3339_nanos(time).to_string(),
        // Go's zero time, which Prometheus prints for never-scraped targets.
        None => "0001-01-01T00:00:00Z".to_owned(),
    };
    json!({
        "discoveredLabels": target.discovered_labels(),
        "labels": target.labels(),
        "scrapePool": job,
        "scrapeUrl": target.url(),
        "globalUrl": target.url(),
        "lastError": status.last_error,
        "lastScrape": last_scrape,
        "lastScrapeDuration": status.last_scrape_duration.as_secs_f64(),
        "health": match status.health { Health::Up => "up", Health::Down => "down", Health::Unknown => "unknown" },
        "scrapeInterval": ember_config::format_duration(target.interval()),
        "scrapeTimeout": ember_config::format_duration(target.timeout()),
    })
}

/// `GET /api/v1/scrape_pools`.
pub(super) async fn scrape_pools(State(state): State<AppState>) -> Json<Value> {
    let pools: Vec<String> = state
        .scrape
        .targets()
        .await
        .into_iter()
        .map(|p| p.job)
        .collect();
    Json(json!({ "status": "success", "data": { "scrapePools": pools } }))
}

//! `/api/v1/status/*`: what the server runs with.
//!
//! Only `config` exists so far; the query API issue adds `buildinfo`,
//! `flags`, `runtimeinfo` and `tsdb` beside it.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// `GET /api/v1/status/config`: the configuration in force, as YAML. After a
/// refused reload this still shows the configuration that is running.
pub(super) async fn config(State(state): State<AppState>) -> Json<Value> {
    let config = state.config.current();
    Json(json!({ "status": "success", "data": { "yaml": config.source.text } }))
}

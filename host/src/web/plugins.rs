//! `GET /api/v1/plugins`: every declared plugin and how it is doing.
//!
//! The answer uses the API's envelope, `{"status":"success","data":[...]}`,
//! one object per plugin sorted by name:
//!
//! ```json
//! {"name": "hash-pii", "kind": "relabeler", "state": "ready",
//!  "path": "/etc/ember/plugins/hash.wasm", "sha256": "9f2c...", "witVersion": "0.1.0",
//!  "lastError": null, "restarts": 0, "calls": 120, "errors": 0, "memoryBytes": 1179648,
//!  "loadedFromCache": true, "loadedAt": "2026-11-25T17:00:00Z",
//!  "capabilities": {"allowedHosts": [], "env": [], "readOnlyDir": null},
//!  "limits": {"memoryBytes": 67108864, "callTimeoutSeconds": 5}}
//! ```
//!
//! `state` is `loading`, `ready`, `restarting` (an instance failed and the
//! restart backoff runs), `disabled` (after repeated failures) or `failed`
//! (the plugin could not be loaded; `lastError` says why).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use ember_model::storage::Annotations;

use super::api::{ApiError, success_json};
use crate::plugins::PluginReport;

/// `GET /api/v1/plugins`.
pub(super) async fn plugins(State(state): State<AppState>) -> Result<Response, ApiError> {
    let reports: Vec<Value> = state.plugins.statuses().iter().map(to_json).collect();
    success_json(&reports, &Annotations::new())
}

fn to_json(report: &PluginReport) -> Value {
    json!({
        "name": report.name,
        "kind": report.kind,
        "state": report.state,
        "path": report.path.display().to_string(),
        "sha256": report.sha256,
        "witVersion": report.wit_version,
        "lastError": report.last_error,
        "restarts": report.restarts,
        "calls": report.calls,
        "errors": report.errors,
        "memoryBytes": report.memory_bytes,
        "loadedFromCache": report.loaded_from_cache,
        "loadedAt": report.loaded_at.map(|at| humantime::format_rfc3339_seconds(at).to_string()),
        "capabilities": {
            "allowedHosts": report.allowed_hosts,
            "env": report.env,
            "readOnlyDir": report.read_only_dir.as_ref().map(|dir| dir.display().to_string()),
        },
        "limits": {
            "memoryBytes": report.memory_limit_bytes,
            "callTimeoutSeconds": report.call_timeout.as_secs_f64(),
        },
    })
}

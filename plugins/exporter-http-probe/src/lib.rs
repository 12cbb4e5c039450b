//! An Ember exporter plugin that probes HTTP endpoints, in the style of the
//! Prometheus blackbox exporter's `http` prober.
//!
//! Each scrape of a target probes one URL and answers:
//!
//! | metric | meaning |
//! | --- | --- |
//! | `probe_success` | 1 if the request completed with an accepted status (and body, when `expect_body` is set), else 0 |
//! | `probe_duration_seconds` | how long the whole probe took |
//! | `probe_http_status_code` | the response's status, 0 when there was none |
//! | `probe_http_content_length` | the body's length in bytes, 0 when there was none |
//! | `probe_failed_due_to_body` | 1 when the status was accepted but `expect_body` was not found |
//!
//! The URL comes from the scrape parameter `target` (set it with a relabel
//! rule from `__address__` to `__param_target`, as with the blackbox
//! exporter), else from the target's `__param_target` label, else
//! `http://<__address__>`. A URL without a scheme gets `http://`.
//!
//! A destination outside the plugin's `allowed_hosts` fails the scrape with
//! `denied`: it is a configuration problem, not a failed probe. Every other
//! failure (refused, timed out, bad status) is a failed probe:
//! `probe_success 0`.
//!
//! Configuration (the plugin's `config:` map):
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `timeout_ms` | bound on the request | 5000 |
//! | `valid_status_codes` | comma-separated accepted statuses | any 2xx |
//! | `method` | request method | `GET` |
//! | `expect_body` | a substring the body must contain | none |

use std::time::Duration;

use ember_plugin_sdk::http::{HttpError, Method, Request};
use ember_plugin_sdk::{
    Config, Exporter, LabelSet, LabelSetExt, MetricFamily, MetricFamilyBuilder, Param,
    PluginError, export_exporter, log,
};
use wasip2::clocks::monotonic_clock;

struct Prober {
    timeout: Duration,
    valid_status_codes: Vec<u16>,
    method: Method,
    expect_body: Option<String>,
}

/// What one probe observed.
#[derive(Default)]
struct Outcome {
    success: bool,
    status: u16,
    content_length: usize,
    failed_due_to_body: bool,
}

impl Exporter for Prober {
    fn init(config: &Config) -> Result<Self, PluginError> {
        let valid_status_codes = config
            .list("valid_status_codes")
            .into_iter()
            .map(|code| {
                code.parse::<u16>()
                    .ok()
                    .filter(|code| (100..600).contains(code))
                    .ok_or_else(|| {
                        PluginError::InvalidConfig(format!(
                            "valid_status_codes: {code:?} is not an HTTP status"
                        ))
                    })
            })
            .collect::<Result<Vec<u16>, PluginError>>()?;
        let method = match config.get("method").unwrap_or("GET").to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "method {other:?}: use GET, HEAD or POST"
                )));
            }
        };
        Ok(Prober {
            timeout: Duration::from_millis(config.parse("timeout_ms")?.unwrap_or(5000)),
            valid_status_codes,
            method,
            expect_body: config.get("expect_body").map(str::to_owned),
        })
    }

    fn collect(
        &self,
        target: LabelSet,
        params: Vec<Param>,
    ) -> Result<Vec<MetricFamily>, PluginError> {
        let url = probe_url(&target, &params)?;
        let started = monotonic_clock::now();
        let outcome = self.probe(&url)?;
        let elapsed = monotonic_clock::now().saturating_sub(started) as f64 / 1e9;
        let none: [(&str, &str); 0] = [];
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        Ok(vec![
            MetricFamilyBuilder::gauge("probe_success")
                .help("Displays whether or not the probe was a success")
                .sample(none, flag(outcome.success))
                .build(),
            MetricFamilyBuilder::gauge("probe_duration_seconds")
                .help("Returns how long the probe took to complete in seconds")
                .unit("seconds")
                .sample(none, elapsed)
                .build(),
            MetricFamilyBuilder::gauge("probe_http_status_code")
                .help("Response HTTP status code")
                .sample(none, f64::from(outcome.status))
                .build(),
            MetricFamilyBuilder::gauge("probe_http_content_length")
                .help("Length of the HTTP response body in bytes")
                .sample(none, outcome.content_length as f64)
                .build(),
            MetricFamilyBuilder::gauge("probe_failed_due_to_body")
                .help("Indicates if the probe failed because expect_body was not found")
                .sample(none, flag(outcome.failed_due_to_body))
                .build(),
        ])
    }
}

impl Prober {
    /// Probes `url`. Only a denied destination is an error; everything
    /// else is an outcome.
    fn probe(&self, url: &str) -> Result<Outcome, PluginError> {
        let response = match Request::new(self.method.clone(), url)
            .header("user-agent", "ember-http-probe/0.1")
            .timeout(self.timeout)
            .send()
        {
            Ok(response) => response,
            Err(error @ HttpError::Denied(_)) => return Err(error.into()),
            Err(error) => {
                log::debug(&format!("probe of {url} failed: {error}"));
                return Ok(Outcome::default());
            }
        };
        let status_ok = if self.valid_status_codes.is_empty() {
            response.is_success()
        } else {
            self.valid_status_codes.contains(&response.status)
        };
        let body_ok = match &self.expect_body {
            Some(needle) => String::from_utf8_lossy(&response.body).contains(needle.as_str()),
            None => true,
        };
        Ok(Outcome {
            success: status_ok && body_ok,
            status: response.status,
            content_length: response.body.len(),
            failed_due_to_body: status_ok && !body_ok,
        })
    }
}

/// The URL to probe: the `target` parameter, the `__param_target` label, or
/// the target's address.
fn probe_url(target: &LabelSet, params: &[Param]) -> Result<String, PluginError> {
    let raw = params
        .iter()
        .find(|param| param.name == "target")
        .map(|param| param.value.as_str())
        .or_else(|| target.get("__param_target"))
        .or_else(|| target.get("__address__"))
        .filter(|raw| !raw.is_empty())
        .ok_or_else(|| {
            PluginError::InvalidInput("no target parameter and no __address__ label".to_owned())
        })?;
    Ok(if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    })
}

export_exporter!(Prober);

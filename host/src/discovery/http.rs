//! `http_sd_configs`: target groups polled from an HTTP endpoint.
//!
//! The behaviour is Prometheus's `discovery/http`: every `refresh_interval`
//! (and once at start) a GET with `Accept: application/json` and
//! `X-Prometheus-Refresh-Interval-Seconds: <seconds>`, through a client built
//! from the entry's `http_config` (authentication, headers, TLS, proxy), with
//! the refresh interval as the request timeout. The answer must be a 200 with
//! `Content-Type: application/json` (optionally `; charset=utf-8`) and a JSON
//! list of `{targets, labels}` groups; each group gets source `"<url>:<index>"`
//! and the label `__meta_url="<url>"`, and when the list is shorter than the
//! last one, empty groups remove the sources that are gone. Any failure
//! (connection, status, content type, body) is logged, counted in
//! `ember_sd_http_failures_total` and `ember_sd_refresh_failures_total{mechanism="http"}`,
//! and sends nothing, so the previous groups stay in effect. Every fetch's
//! duration goes to `ember_sd_refresh_duration_histogram_seconds{mechanism="http"}`.

use std::time::Duration;

use ember_config::HttpSdConfig;
use prometheus::{Histogram, IntCounter};
use tokio::time::MissedTickBehavior;

use super::target_list::{self, Format, TargetListError};
use super::{
    Discoverer, DiscovererFuture, DiscovererMetrics, DiscoveryError, TargetGroup, URL_LABEL,
    UpdateSender,
};
use crate::http_client::{HttpClient, HttpClientError};

/// The header that tells the endpoint how often it is asked.
pub const REFRESH_INTERVAL_HEADER: &str = "X-Prometheus-Refresh-Interval-Seconds";

/// Discovers targets from the endpoint of one `http_sd_configs` entry.
#[derive(Debug)]
pub struct HttpDiscoverer {
    url: String,
    refresh_interval: Duration,
    client: HttpClient,
    failures: IntCounter,
    refresh_failures: IntCounter,
    refresh_duration: Histogram,
}

impl HttpDiscoverer {
    /// A discoverer for `config`, counting failures in `metrics`. Fails when
    /// the HTTP client cannot be built (say, an unreadable CA file).
    pub fn new(config: &HttpSdConfig, metrics: &DiscovererMetrics) -> Result<Self, DiscoveryError> {
        let url = config.url.as_str().to_owned();
        let client =
            HttpClient::new(&config.http_client, &format!("http_sd {url}")).map_err(|source| {
                DiscoveryError::HttpClient {
                    url: url.clone(),
                    source,
                }
            })?;
        Ok(Self {
            url,
            refresh_interval: config.refresh_interval,
            client,
            failures: metrics.http_failures.clone(),
            refresh_failures: metrics.refresh_failures.with_label_values(&["http"]),
            refresh_duration: metrics.refresh_duration.with_label_values(&["http"]),
        })
    }

    /// Fetches and decodes the current groups once.
    async fn fetch(&self) -> Result<Vec<TargetGroup>, FetchError> {
        let response = self
            .client
            .get(&self.url)?
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                REFRESH_INTERVAL_HEADER,
                self.refresh_interval.as_secs_f64().to_string(),
            )
            .timeout(self.refresh_interval)
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default();
        if !is_json_content_type(&content_type) {
            return Err(FetchError::ContentType(content_type));
        }
        let body = response.bytes().await?;
        Ok(target_list::decode(
            &body,
            Format::Json,
            &self.url,
            URL_LABEL,
        )?)
    }
}

impl Discoverer for HttpDiscoverer {
    fn mechanism(&self) -> &str {
        "http"
    }

    fn run(self: Box<Self>, updates: UpdateSender) -> DiscovererFuture {
        Box::pin(async move {
            let mut ticker = tokio::time::interval(self.refresh_interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // How many groups the last successful fetch returned.
            let mut last_count = 0;
            loop {
                tokio::select! {
                    // The first tick completes at once: the initial fetch.
                    _ = ticker.tick() => {}
                    () = updates.closed() => return,
                }
                let timer = self.refresh_duration.start_timer();
                let fetched = self.fetch().await;
                timer.observe_duration();
                let mut groups = match fetched {
                    Ok(groups) => groups,
                    Err(error) => {
                        self.failures.inc();
                        self.refresh_failures.inc();
                        tracing::error!(url = %self.url, %error, "Unable to refresh target groups");
                        continue;
                    }
                };
                let count = groups.len();
                groups.extend(
                    (count..last_count)
                        .map(|index| TargetGroup::empty(target_list::source(&self.url, index))),
                );
                last_count = count;
                if updates.send(groups).await.is_err() {
                    return;
                }
            }
        })
    }
}

/// Why one fetch failed.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Request(#[from] HttpClientError),
    #[error("{}", with_causes(.0))]
    Http(#[from] reqwest::Error),
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("unsupported content type {0:?}")]
    ContentType(String),
    #[error("{0}")]
    Decode(#[from] TargetListError),
}

/// reqwest's messages name the failed request but not why it failed
/// ("operation timed out", "connection refused"); the log line needs both.
fn with_causes(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        message.push_str(": ");
        message.push_str(&error.to_string());
        cause = error.source();
    }
    message
}

/// Prometheus accepts exactly `application/json`, optionally followed by
/// `;charset=utf-8` (the charset possibly quoted, spaces allowed after the
/// `;`), case-insensitively, surrounding whitespace ignored.
fn is_json_content_type(value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    let Some(rest) = value.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(parameter) = rest.strip_prefix(';') else {
        return false;
    };
    // Go's `\s`: space, tab, newline, form feed, carriage return.
    let parameter = parameter.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    matches!(parameter, "charset=utf-8" | "charset=\"utf-8\"")
}

#[cfg(test)]
mod tests;

//! An Ember remote-storage plugin that writes samples to InfluxDB 1.x in
//! line protocol, over `wasi:http`.
//!
//! Each series becomes InfluxDB points in the measurement named by its
//! `__name__`, with every other label as a tag and the sample in the field
//! `value`, at millisecond precision:
//!
//! ```text
//! http_requests_total,code=200,job=web value=1027 1700000000000
//! ```
//!
//! One `write` call is one `POST /write?db=<database>&precision=ms`. The
//! answer decides what the server does with the batch: 2xx acknowledges it;
//! 429 and 5xx (and network failures) are retryable, honouring
//! `Retry-After`; other 4xx are permanent (InfluxDB rejected the data).
//!
//! InfluxDB cannot store NaN or infinite floats, so such samples (including
//! Prometheus stale markers) are skipped and counted in a debug log line.
//! Series without `__name__` are skipped too. Remote read is not offered.
//!
//! Configuration (the plugin's `config:` map):
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `url` | InfluxDB's base URL, e.g. `http://127.0.0.1:8086`; its host must be in `allowed_hosts` | required |
//! | `database` | the database to write to | required |
//! | `retention_policy` | the retention policy (`rp=`) | the database's default |
//! | `username`, `password` | basic credentials (`u=`/`p=`) | none |
//! | `timeout_ms` | bound on one request | 10000 |

use std::fmt::Write as _;
use std::time::Duration;

use ember_plugin_sdk::http::{HttpError, Method, Request};
use ember_plugin_sdk::{
    Config, PluginError, RemoteStorage, RetryableError, Series, WriteError, export_remote_storage,
    log,
};

struct Influx {
    write_url: String,
    timeout: Duration,
}

impl RemoteStorage for Influx {
    fn init(config: &Config) -> Result<Self, PluginError> {
        let base = config.require("url")?.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PluginError::InvalidConfig(format!(
                "url {base:?} must start with http:// or https://"
            )));
        }
        let mut write_url = format!(
            "{base}/write?db={}&precision=ms",
            query_escape(config.require("database")?)
        );
        for (key, param) in [("retention_policy", "rp"), ("username", "u"), ("password", "p")] {
            if let Some(value) = config.get(key) {
                let _ = write!(write_url, "&{param}={}", query_escape(value));
            }
        }
        Ok(Influx {
            write_url,
            timeout: Duration::from_millis(config.parse("timeout_ms")?.unwrap_or(10_000)),
        })
    }

    fn write(&self, batch: Vec<Series>) -> Result<(), WriteError> {
        let (body, skipped) = line_protocol(&batch);
        if skipped > 0 {
            log::debug(&format!(
                "skipped {skipped} samples InfluxDB cannot store (NaN, infinities, no __name__)"
            ));
        }
        if body.is_empty() {
            return Ok(());
        }
        let response = Request::new(Method::Post, &self.write_url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body)
            .timeout(self.timeout)
            .send();
        let response = match response {
            Ok(response) => response,
            Err(error @ (HttpError::Denied(_) | HttpError::InvalidUrl(_))) => {
                return Err(WriteError::Permanent(error.to_string()));
            }
            Err(error) => {
                return Err(WriteError::Retryable(RetryableError {
                    message: error.to_string(),
                    retry_after_ms: None,
                }));
            }
        };
        if response.is_success() {
            return Ok(());
        }
        let message = format!(
            "InfluxDB answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).trim()
        );
        if response.status == 429 || response.status >= 500 {
            let retry_after_ms = response
                .header("retry-after")
                .and_then(|seconds| seconds.trim().parse::<u64>().ok())
                .map(|seconds| seconds.saturating_mul(1000));
            Err(WriteError::Retryable(RetryableError {
                message,
                retry_after_ms,
            }))
        } else {
            Err(WriteError::Permanent(message))
        }
    }
}

/// The batch in line protocol, one point per sample, and the number of
/// samples skipped.
fn line_protocol(batch: &[Series]) -> (String, usize) {
    let mut out = String::new();
    let mut skipped = 0;
    let mut key = String::new();
    for series in batch {
        let Some(name) = series
            .labels
            .iter()
            .find(|label| label.name == "__name__")
            .map(|label| label.value.as_str())
            .filter(|name| !name.is_empty())
        else {
            skipped += series.samples.len();
            continue;
        };
        // The measurement and tags are the same for every sample of the
        // series, so they are escaped once.
        key.clear();
        escape_into(&mut key, name, &[',', ' ']);
        let mut tags: Vec<_> = series
            .labels
            .iter()
            .filter(|label| label.name != "__name__" && !label.value.is_empty())
            .collect();
        // InfluxDB wants tags sorted by key for the best performance; the
        // host sends labels sorted already, so this is usually a no-op.
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        for tag in tags {
            key.push(',');
            escape_into(&mut key, &tag.name, &[',', '=', ' ']);
            key.push('=');
            escape_into(&mut key, &tag.value, &[',', '=', ' ']);
        }
        for sample in &series.samples {
            if !sample.value.is_finite() {
                skipped += 1;
                continue;
            }
            // `{:?}` of an f64 is the shortest representation that reads
            // back to the same value, and always has a `.` or an exponent,
            // which keeps InfluxDB from taking it for an integer field.
            let _ = writeln!(out, "{key} value={:?} {}", sample.value, sample.timestamp_ms);
        }
    }
    (out, skipped)
}

/// Appends `text` with each of `special` and backslashes escaped by a
/// backslash; newlines cannot be escaped in line protocol and become spaces
/// (escaped).
fn escape_into(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Percent-encodes a query parameter value.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

export_remote_storage!(Influx);

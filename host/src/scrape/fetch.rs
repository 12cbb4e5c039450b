//! One HTTP scrape: request, response checks, bounded body.

use std::time::Duration;

use ember_model::exposition::negotiation::Negotiated;
use ember_model::exposition::{Format, ScrapeProtocol};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE};

use crate::http_client::{HttpClient, HttpClientError};

/// How a scrape request is made; fixed per scrape pool.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub accept: String,
    pub timeout: Duration,
    pub enable_compression: bool,
    /// 0 means unlimited.
    pub body_size_limit: u64,
    pub fallback: Option<ScrapeProtocol>,
}

/// A successful HTTP exchange, before parsing.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub negotiated: Negotiated,
}

/// Why a scrape's HTTP exchange failed. Messages follow Prometheus's, which
/// operators know from the targets page.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Client(#[from] HttpClientError),
    #[error("Get \"{url}\": context deadline exceeded")]
    Timeout { url: String },
    #[error("Get \"{url}\": {message}")]
    Request { url: String, message: String },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded: the target's response is larger than {limit} bytes")]
    BodySizeLimit { limit: u64 },
    #[error("{0}")]
    ContentType(#[from] ember_model::exposition::UnsupportedContentType),
    /// An exporter plugin's collect call failed.
    #[error("{0}")]
    Plugin(String),
}

/// Fetches `url` under `settings`, with the scrape timeout covering the
/// whole exchange including the body.
pub async fn fetch(
    client: &HttpClient,
    url: &str,
    settings: &FetchSettings,
) -> Result<Fetched, FetchError> {
    let mut request = client
        .get(url)?
        .header(ACCEPT, &settings.accept)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", settings.timeout.as_secs_f64()),
        )
        .timeout(settings.timeout);
    if !settings.enable_compression {
        request = request.header(ACCEPT_ENCODING, "identity");
    }
    let request_error = |e: reqwest::Error| {
        if e.is_timeout() {
            FetchError::Timeout {
                url: url.to_owned(),
            }
        } else {
            FetchError::Request {
                url: url.to_owned(),
                message: error_chain(&e),
            }
        }
    };
    let mut response = request.send().await.map_err(request_error)?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().to_string()));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let negotiated = Format::negotiate(content_type.as_deref(), settings.fallback)?;

    let limit = settings.body_size_limit;
    let mut body =
        Vec::with_capacity(response.content_length().unwrap_or(0).min(64 << 20) as usize);
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        body.extend_from_slice(&chunk);
        // The limit applies to the decompressed body, as in Prometheus: a
        // small gzip bomb must not exhaust memory.
        if limit > 0 && body.len() as u64 > limit {
            return Err(FetchError::BodySizeLimit { limit });
        }
    }
    Ok(Fetched { body, negotiated })
}

/// The error and its causes on one line; reqwest's top-level message alone
/// ("error sending request") hides the useful part (connection refused, ...).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! `POST /api/v1/write`: the remote-write receiver (1.0 and 2.0), enabled
//! by `--web.enable-remote-write-receiver`.
//!
//! The protocol is chosen by the `Content-Type`, as the 2.0 specification
//! says: `application/x-protobuf` (or no content type, for old 1.0
//! senders) or `;proto=prometheus.WriteRequest` is 1.0,
//! `;proto=io.prometheus.write.v2.Request` is 2.0, anything else is 415.
//! The body must be snappy (block format); another `Content-Encoding` is
//! 415. Answers, as Prometheus's:
//!
//! - 204 when everything was written;
//! - 400 for an undecodable body or invalid data, which senders do not
//!   retry (see `ember_remote::ingest` for what a 400 leaves written: for
//!   1.0 nothing, for 2.0 what the `-Written` headers count);
//! - 413 when the body exceeds `--web.remote-write-receiver.max-body-bytes`;
//! - 500 when the storage failed (senders retry);
//! - 404 with Prometheus's message when the receiver is disabled.
//!
//! A 2xx is sent only after the appender's commit returned, and the commit
//! writes the WAL record of every sample before it returns; so an
//! acknowledged sample survives a crash of the process. Whether it also
//! survives a crash of the machine depends on the WAL's fsync policy (by
//! default fsync at segment cut, as Prometheus). See
//! docs/remote-receive-and-read.md.

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_remote::codec::{CodecError, decompress};
use ember_remote::ingest::{self, V2Options, WriteError, WriteStats};
use ember_remote::prompb::WriteRequest;
use ember_remote::writev2;
use prost::Message;

use super::AppState;

/// How many times its compressed size a body may grow to when
/// decompressed. Remote-write bodies compress about 5-10 times; this bounds
/// the memory a small malicious body can claim.
const MAX_DECOMPRESSION_RATIO: usize = 8;

/// Which message the body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    V1,
    V2,
}

/// A plain-text error answer, as Go's `http.Error` writes it.
fn text(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// Picks the protocol from `Content-Type`, or explains why not (415).
fn protocol(headers: &HeaderMap) -> Result<Protocol, String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Protocol::V1);
    };
    let value = value
        .to_str()
        .map_err(|_| "Content-Type is not ASCII".to_owned())?;
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(format!(
            "unsupported Content-Type {value:?}: expected application/x-protobuf"
        ));
    }
    let mut protocol = Protocol::V1;
    for param in parts {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("proto") {
            protocol = match val.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Protocol::V1,
                writev2::PROTO_NAME => Protocol::V2,
                other => {
                    return Err(format!(
                        "unsupported proto {other:?} in Content-Type: expected prometheus.WriteRequest or {}",
                        writev2::PROTO_NAME
                    ));
                }
            };
        }
    }
    Ok(protocol)
}

pub(super) async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !state.flags.enable_remote_write_receiver {
        return text(
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver",
        );
    }
    let protocol = match protocol(&headers) {
        Ok(p) => p,
        Err(message) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, message),
    };
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("?");
        // An absent encoding is taken as snappy, as Prometheus does for old
        // 1.0 senders that leave the header out.
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("snappy") {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {encoding:?}: expected snappy"),
            );
        }
    }
    let limit = state.flags.remote_write_max_body_bytes;
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body exceeds the limit of {limit} bytes (--web.remote-write-receiver.max-body-bytes)"
            ),
        )
    };
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > limit
    {
        return too_large();
    }
    let compressed = match to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(error) => {
            if error
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return too_large();
            }
            return text(StatusCode::BAD_REQUEST, "reading the request body failed");
        }
    };
    let storage = state.storage.clone();
    let decompressed_limit = limit.saturating_mul(MAX_DECOMPRESSION_RATIO);
    let outcome = tokio::task::spawn_blocking(move || {
        let body = match decompress(&compressed, decompressed_limit) {
            Ok(body) => body,
            Err(error @ CodecError::TooLarge { .. }) => {
                return Outcome::Rejected(StatusCode::PAYLOAD_TOO_LARGE, error.to_string());
            }
            Err(error) => {
                return Outcome::Rejected(
                    StatusCode::BAD_REQUEST,
                    format!("decoding body: {error}"),
                );
            }
        };
        match protocol {
            Protocol::V1 => write_v1(&*storage, &body),
            Protocol::V2 => write_v2(&*storage, &body),
        }
    })
    .await;
    match outcome {
        Ok(outcome) => outcome.into_response(protocol),
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

/// What processing a body came to.
enum Outcome {
    /// Written (2.0: possibly in part, with the reasons for the rest).
    Written(WriteStats, Vec<String>),
    /// Nothing written.
    Rejected(StatusCode, String),
}

impl Outcome {
    fn into_response(self, protocol: Protocol) -> Response {
        match self {
            Outcome::Rejected(status, message) => {
                if status.is_server_error() {
                    tracing::error!(error = %message, "Error appending remote write");
                } else {
                    tracing::debug!(error = %message, %status, "Remote write request rejected");
                }
                let mut response = text(status, message);
                if protocol == Protocol::V2 {
                    written_headers(&mut response, WriteStats::default());
                }
                response
            }
            Outcome::Written(stats, rejected) => {
                let mut response = if rejected.is_empty() {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    tracing::debug!(rejected = rejected.len(), first = %rejected[0], "Remote write request partially written");
                    text(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "{} samples written, {} rejected: {}",
                            stats.samples,
                            rejected.len(),
                            rejected.join("; ")
                        ),
                    )
                };
                if protocol == Protocol::V2 {
                    written_headers(&mut response, stats);
                }
                response
            }
        }
    }
}

fn written_headers(response: &mut Response, stats: WriteStats) {
    let headers = response.headers_mut();
    for (name, count) in [
        ("x-prometheus-remote-write-samples-written", stats.samples),
        (
            "x-prometheus-remote-write-histograms-written",
            stats.histograms,
        ),
        (
            "x-prometheus-remote-write-exemplars-written",
            stats.exemplars,
        ),
    ] {
        headers.insert(name, HeaderValue::from(count));
    }
}

fn write_v1(storage: &dyn ember_model::storage::Storage, body: &[u8]) -> Outcome {
    let request = match WriteRequest::decode(body) {
        Ok(r) => r,
        Err(error) => {
            return Outcome::Rejected(
                StatusCode::BAD_REQUEST,
                format!("decoding prometheus.WriteRequest: {error}"),
            );
        }
    };
    let mut app = storage.appender();
    match ingest::append_v1(app.as_mut(), &request) {
        Ok(stats) => match app.commit() {
            Ok(()) => Outcome::Written(stats, Vec::new()),
            Err(error) => Outcome::Rejected(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        },
        Err(error) => {
            let _ = app.rollback();
            match error {
                WriteError::BadData(m) => Outcome::Rejected(StatusCode::BAD_REQUEST, m),
                other => Outcome::Rejected(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
            }
        }
    }
}

fn write_v2(storage: &dyn ember_model::storage::Storage, body: &[u8]) -> Outcome {
    let request = match writev2::Request::decode(body) {
        Ok(r) => r,
        Err(error) => {
            return Outcome::Rejected(
                StatusCode::BAD_REQUEST,
                format!("decoding {}: {error}", writev2::PROTO_NAME),
            );
        }
    };
    let mut app = storage.appender();
    let outcome = ingest::append_v2(app.as_mut(), &request, V2Options::default());
    if let Some(error) = outcome.storage_error {
        let _ = app.rollback();
        return Outcome::Rejected(StatusCode::INTERNAL_SERVER_ERROR, error.to_string());
    }
    match app.commit() {
        Ok(()) => Outcome::Written(outcome.stats, outcome.rejected),
        Err(error) => Outcome::Rejected(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        h
    }

    #[test]
    fn content_type_negotiation() {
        assert_eq!(protocol(&HeaderMap::new()), Ok(Protocol::V1));
        assert_eq!(
            protocol(&headers("application/x-protobuf")),
            Ok(Protocol::V1)
        );
        assert_eq!(
            protocol(&headers(
                "application/x-protobuf;proto=prometheus.WriteRequest"
            )),
            Ok(Protocol::V1)
        );
        assert_eq!(
            protocol(&headers(
                "application/x-protobuf; proto=io.prometheus.write.v2.Request"
            )),
            Ok(Protocol::V2)
        );
        assert!(protocol(&headers("application/json")).is_err());
        assert!(protocol(&headers("application/x-protobuf;proto=foo.Bar")).is_err());
    }
}

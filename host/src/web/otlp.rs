//! `POST /api/v1/otlp/v1/metrics`: the OTLP/HTTP metrics receiver, enabled
//! by `--web.enable-otlp-receiver` (Prometheus's flag and path).
//!
//! Bodies are `application/x-protobuf` or `application/json`
//! `ExportMetricsServiceRequest`s, plain or `Content-Encoding: gzip`. The
//! translation to Prometheus series is `ember_otlp`'s, under the running
//! configuration's `otlp:` section. Answers follow the OTLP/HTTP
//! specification:
//!
//! - 200 with an `ExportMetricsServiceResponse` in the request's encoding
//!   once the appender committed; its `partial_success` counts the data
//!   points that were refused (by translation, or by the storage: out of
//!   order, duplicate, too old) and says why, for the first few;
//! - 400 for a body that does not decode (nothing is stored);
//! - 413 for a body over [`MAX_BODY_BYTES`], or one that inflates past
//!   [`MAX_DECODED_BYTES`] (a gzip bomb);
//! - 415 for another content type or content encoding;
//! - 503 when the storage failed (OTLP senders retry 503; nothing of the
//!   request is visible);
//! - 404 with Prometheus's message when the receiver is disabled.
//!
//! Error bodies are plain text, as Prometheus writes them. A request is one
//! appender transaction: a query never sees half of it.

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_config::{OtlpConfig, TranslationStrategy};
use ember_model::metadata::Metadata;
use ember_model::sample::timestamp;
use ember_model::storage::Storage;
use ember_otlp::{
    DeltaState, Encoding, ExportMetricsPartialSuccess, ExportMetricsServiceResponse, NO_POINT,
    Settings, Strategy, Translation,
};

use super::AppState;

/// The largest body accepted as sent (compressed or not).
pub const MAX_BODY_BYTES: usize = 32 << 20;
/// The largest body accepted after gzip decompression.
pub const MAX_DECODED_BYTES: usize = 64 << 20;
/// Delta series not updated for this long are forgotten (see
/// `ember_otlp::delta`).
const DELTA_IDLE_MS: i64 = 60 * 60 * 1000;
/// How many refusal reasons a `partial_success` message lists.
const MAX_MESSAGES: usize = 5;

/// The receiver's state shared by requests: the delta-to-cumulative table
/// and the metadata of the families received, for `/api/v1/metadata`.
#[derive(Debug, Clone, Default)]
pub struct OtlpReceiver {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    delta: Mutex<DeltaTable>,
    metadata: RwLock<BTreeMap<String, Metadata>>,
}

#[derive(Debug, Default)]
struct DeltaTable {
    state: DeltaState,
    last_eviction_ms: i64,
}

impl OtlpReceiver {
    /// The metadata of every metric family received, by name (the latest
    /// received wins).
    pub fn metadata(&self) -> BTreeMap<String, Metadata> {
        self.inner
            .metadata
            .read()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

/// Translation settings from the `otlp:` section and the lookback delta.
fn settings(config: &OtlpConfig, lookback_delta_ms: i64) -> Settings {
    Settings {
        strategy: match config.translation_strategy {
            TranslationStrategy::UnderscoreEscapingWithSuffixes => {
                Strategy::UnderscoreEscapingWithSuffixes
            }
            TranslationStrategy::UnderscoreEscapingWithoutSuffixes => {
                Strategy::UnderscoreEscapingWithoutSuffixes
            }
            TranslationStrategy::NoUtf8EscapingWithSuffixes => Strategy::NoUtf8EscapingWithSuffixes,
            TranslationStrategy::NoTranslation => Strategy::NoTranslation,
        },
        promote_resource_attributes: config.promote_resource_attributes.clone(),
        promote_all_resource_attributes: config.promote_all_resource_attributes,
        ignore_resource_attributes: config.ignore_resource_attributes.clone(),
        keep_identifying_resource_attributes: config.keep_identifying_resource_attributes,
        promote_scope_metadata: config.promote_scope_metadata,
        label_name_underscore_sanitization: config.label_name_underscore_sanitization,
        label_name_preserve_multiple_underscores: config.label_name_preserve_multiple_underscores,
        lookback_delta_ms,
    }
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

/// The encoding named by `Content-Type`, or why it is refused (415).
fn encoding(headers: &HeaderMap) -> Result<Encoding, String> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = value.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/x-protobuf") {
        Ok(Encoding::Protobuf)
    } else if media.eq_ignore_ascii_case("application/json") {
        Ok(Encoding::Json)
    } else {
        Err(format!(
            "unsupported Content-Type {value:?}: expected application/x-protobuf or application/json"
        ))
    }
}

/// Why a request failed before anything was stored.
enum Failure {
    TooLarge(String),
    BadRequest(String),
    Storage(String),
}

impl Failure {
    fn response(self) -> Response {
        match self {
            Self::TooLarge(m) => text(StatusCode::PAYLOAD_TOO_LARGE, m),
            Self::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
            Self::Storage(m) => text(StatusCode::SERVICE_UNAVAILABLE, m),
        }
    }
}

/// Inflates a gzip body, refusing to grow it past [`MAX_DECODED_BYTES`].
fn gunzip(body: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(MAX_DECODED_BYTES));
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(MAX_DECODED_BYTES as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| Failure::BadRequest(format!("decompressing the gzip body: {e}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(Failure::TooLarge(format!(
            "the gzip body inflates past the limit of {MAX_DECODED_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// What was stored of one request.
struct Outcome {
    translation_rejected: u64,
    storage_rejected: u64,
    messages: Vec<String>,
}

/// Appends a translation in one transaction.
fn append(storage: &dyn Storage, translation: &Translation) -> Result<Outcome, Failure> {
    let mut app = storage.appender();
    let mut rejected_points: HashSet<u32> = HashSet::new();
    let mut messages = Vec::new();
    let mut with_metadata = HashSet::new();
    for sample in &translation.samples {
        match app.append(None, &sample.labels, sample.t, sample.v) {
            Ok(series) => {
                if with_metadata.insert(series)
                    && let Some(family) = translation.metadata.get(sample.family as usize)
                {
                    // Metadata is best effort: a refusal here does not
                    // refuse the sample.
                    let _ = app.update_metadata(Some(series), &sample.labels, &family.metadata);
                }
            }
            Err(error) if error.is_sample_rejection() => {
                if sample.point != NO_POINT {
                    rejected_points.insert(sample.point);
                }
                if messages.len() < MAX_MESSAGES {
                    messages.push(error.to_string());
                }
            }
            Err(error) => {
                let _ = app.rollback();
                return Err(Failure::Storage(format!("storing the samples: {error}")));
            }
        }
    }
    for exemplar in &translation.exemplars {
        // The TSDB keeps no exemplars yet (it refuses them as disabled);
        // other refusals (duplicates, order) lose only the exemplar.
        let _ = app.append_exemplar(None, &exemplar.series, &exemplar.exemplar);
    }
    app.commit()
        .map_err(|error| Failure::Storage(format!("committing the samples: {error}")))?;
    Ok(Outcome {
        translation_rejected: translation.rejected_points,
        storage_rejected: rejected_points.len() as u64,
        messages,
    })
}

pub(super) async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !state.flags.enable_otlp_receiver {
        return text(
            StatusCode::NOT_FOUND,
            "otlp write receiver needs to be enabled with --web.enable-otlp-receiver",
        );
    }
    let encoding = match encoding(&headers) {
        Ok(e) => e,
        Err(message) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, message),
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}: expected gzip or none"),
            );
        }
    };
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds the limit of {MAX_BODY_BYTES} bytes"),
        )
    };
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
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
    let config = state.config.current();
    let settings = settings(
        &config.otlp,
        timestamp::from_duration(state.flags.query_lookback_delta),
    );
    let storage = state.storage.clone();
    let receiver = state.otlp.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let plain;
        let bytes: &[u8] = if gzip {
            plain = gunzip(&body)?;
            &plain
        } else {
            &body
        };
        let request =
            ember_otlp::decode(bytes, encoding).map_err(|e| Failure::BadRequest(e.to_string()))?;
        let now = timestamp::now();
        let translation = {
            let mut table = receiver
                .inner
                .delta
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if now - table.last_eviction_ms > 60_000 {
                table.state.evict_idle(now - DELTA_IDLE_MS);
                table.last_eviction_ms = now;
            }
            ember_otlp::translate(&request, &settings, &mut table.state, now)
        };
        let outcome = append(&*storage, &translation)?;
        if let Ok(mut known) = receiver.inner.metadata.write() {
            for family in &translation.metadata {
                known.insert(family.name.clone(), family.metadata.clone());
            }
        }
        let mut messages = translation.errors.clone();
        messages.extend(outcome.messages.iter().cloned());
        Ok::<_, Failure>((outcome, messages))
    })
    .await;
    let (outcome, messages) = match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(failure)) => return failure.response(),
        Err(join_error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the OTLP request failed: {join_error}"),
            );
        }
    };
    let rejected = outcome.translation_rejected + outcome.storage_rejected;
    if rejected > 0 {
        tracing::debug!(rejected, reasons = ?messages, "OTLP data points refused");
    }
    let response = ExportMetricsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: messages
                .iter()
                .take(MAX_MESSAGES)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        }),
    };
    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        ember_otlp::encode_response(&response, encoding),
    )
        .into_response()
}

//! `POST /api/v1/read`: the remote read server.
//!
//! The body is a snappy-compressed `prometheus.ReadRequest`. The answer is
//! the first response type of the request's `accepted_response_types` that
//! Ember implements (SAMPLES when the list is empty): a snappy-compressed
//! `ReadResponse`, or a stream of CRC32C-checked frames of
//! `ChunkedReadResponse` with Prometheus XOR chunks, sent as they are built.
//! `--storage.remote.read-concurrent-limit` bounds the requests served at
//! once (more wait), `--storage.remote.read-sample-limit` the samples of a
//! SAMPLES answer (400 beyond), `--storage.remote.read-max-bytes-in-frame`
//! the frames of a streamed one. External labels are applied as
//! `ember_remote::read` describes. Errors are plain text, as Prometheus's:
//! 400 for an undecodable request, invalid matchers, an unsupported
//! response type or the sample limit; 500 for a storage failure.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_remote::codec::{compress, decompress};
use ember_remote::prompb::ReadRequest;
use ember_remote::prompb::read_request::ResponseType;
use ember_remote::read::{self, ReadError, ReadOptions};
use http_body::Frame;
use prost::Message;
use tokio::sync::{Semaphore, mpsc};

use super::AppState;

/// Largest compressed read request accepted. Requests are a handful of
/// matchers; this only stops abuse.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// Bounds the remote reads served at once. Cloned into every request.
#[derive(Debug, Clone)]
pub struct ReadSlots(Option<Arc<Semaphore>>);

impl ReadSlots {
    /// `limit` slots; 0 means unlimited.
    pub fn new(limit: usize) -> Self {
        Self((limit > 0).then(|| Arc::new(Semaphore::new(limit))))
    }
}

fn text(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn error_response(error: ReadError) -> Response {
    let status = match error {
        ReadError::Storage(_) | ReadError::Send(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    if status.is_server_error() {
        tracing::error!(%error, "Error serving remote read");
    }
    text(status, error)
}

pub(super) async fn read(State(state): State<AppState>, body: Body) -> Response {
    // Waiting for a slot rather than refusing is what Prometheus does; the
    // client's own timeout bounds the wait.
    let _permit = match &state.remote_read_slots.0 {
        Some(semaphore) => match semaphore.clone().acquire_owned().await {
            Ok(permit) => Some(permit),
            Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"),
        },
        None => None,
    };
    let compressed = match to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("reading the request body failed or it exceeds {MAX_REQUEST_BYTES} bytes"),
            );
        }
    };
    let request = match decompress(&compressed, MAX_REQUEST_BYTES)
        .map_err(|e| e.to_string())
        .and_then(|b| ReadRequest::decode(b.as_slice()).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("decoding read request: {error}"),
            );
        }
    };
    let response_type = match read::negotiate(&request.accepted_response_types) {
        Ok(t) => t,
        Err(error) => return error_response(error),
    };
    tracing::debug!(
        ?response_type,
        queries = request.queries.len(),
        "Serving remote read"
    );
    let options = ReadOptions {
        sample_limit: state.flags.remote_read_sample_limit,
        max_bytes_in_frame: state.flags.remote_read_max_bytes_in_frame,
        external_labels: ember_model::labels::Labels::new(
            &state.config.current().global.external_labels,
        )
        .unwrap_or_default(),
    };
    let storage = state.storage.clone();
    match response_type {
        ResponseType::Samples => {
            let answer = tokio::task::spawn_blocking(move || {
                read::sampled_response(&*storage, &request, &options)
                    .map(|r| compress(&r.encode_to_vec()))
            })
            .await;
            match answer {
                Ok(Ok(body)) => (
                    [
                        (header::CONTENT_TYPE, read::SAMPLES_CONTENT_TYPE),
                        (header::CONTENT_ENCODING, "snappy"),
                    ],
                    body,
                )
                    .into_response(),
                Ok(Err(error)) => error_response(error),
                Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
            }
        }
        ResponseType::StreamedXorChunks => {
            // The first frame decides the status: an error before it is an
            // ordinary error answer; after it, the stream just ends early
            // (the client sees a short stream, as with Prometheus).
            let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
            let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), ReadError>>();
            let permit = _permit;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let mut first_tx = Some(first_tx);
                let result = read::stream_chunked(&*storage, &request, &options, &mut |frame| {
                    if let Some(first) = first_tx.take() {
                        let _ = first.send(Ok(()));
                    }
                    tx.blocking_send(frame)
                        .map_err(|_| "client went away".to_owned())
                });
                match (result, first_tx) {
                    (r, Some(first)) => {
                        let _ = first.send(r);
                    }
                    (Err(error), None) => {
                        tracing::warn!(%error, "Remote read stream ended early");
                    }
                    (Ok(()), None) => {}
                }
            });
            match first_rx.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return error_response(error),
                Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "remote read failed"),
            }
            let body = Body::new(FrameBody(rx));
            ([(header::CONTENT_TYPE, read::STREAMED_CONTENT_TYPE)], body).into_response()
        }
    }
}

/// A response body fed by the blocking task that builds the frames.
struct FrameBody(mpsc::Receiver<Vec<u8>>);

impl http_body::Body for FrameBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|f| Ok(Frame::data(Bytes::from(f)))))
    }
}

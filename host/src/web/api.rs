//! The API's envelope and error vocabulary, in one place.
//!
//! Every `/api/v1` handler reports failure as an [`ApiError`], which renders
//! Prometheus's envelope (`{"status":"error","errorType":..,"error":..}`)
//! with Prometheus's HTTP status for each type, so clients that branch on
//! either keep working. Engine errors ([`QueryError`]) and storage errors
//! become API errors here and nowhere else. Successful answers go through
//! [`success`], which adds the `warnings` and `infos` arrays.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_model::storage::{Annotations, StorageError};
use ember_promql::engine::QueryError;

use super::json::write_string;

/// How many warnings (and, separately, infos) a response lists before
/// summarising the rest, as Prometheus does.
const MAX_ANNOTATIONS: usize = 10;

/// Prometheus's `errorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is malformed (bad parameter, unparsable query): 400.
    BadData,
    /// The query could not be executed (e.g. too many samples): 422.
    Execution,
    /// The query ran out of time: 503.
    Timeout,
    /// The client went away: 499.
    Canceled,
    /// A bug or an unexpected failure: 500.
    Internal,
    /// The server cannot answer yet (e.g. still starting): 503.
    Unavailable,
    /// No such resource: 404.
    NotFound,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadData => "bad_data",
            Self::Execution => "execution",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::BadData => StatusCode::BAD_REQUEST,
            Self::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Timeout | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            // nginx's "client closed request", which Prometheus uses too.
            Self::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// A failed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadData, message)
    }

    /// A parameter that does not parse or is out of range, worded as
    /// Prometheus's `invalidParamError`: `invalid parameter "step": ...`.
    pub fn invalid_param(name: &str, error: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {error}"))
    }

    /// An unexpected failure (for example a response that cannot be
    /// serialised).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(ErrorType::Internal, error.to_string())
    }
}

impl From<QueryError> for ApiError {
    /// Maps the engine's typed errors as Prometheus's `returnAPIError`:
    /// cancellation and timeouts keep their types, storage failures and
    /// engine bugs are internal, everything else that fails while running
    /// is an execution error. `BadData` means the query text is invalid for
    /// the request (a range query of a range vector, an unknown function),
    /// which Prometheus detects when creating the query and reports as an
    /// invalid `query` parameter.
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::BadData(_) => Self::invalid_param("query", error),
            QueryError::Execution(_) => Self::new(ErrorType::Execution, error.to_string()),
            QueryError::Timeout(_) => Self::new(ErrorType::Timeout, error.to_string()),
            QueryError::Canceled(_) => Self::new(ErrorType::Canceled, error.to_string()),
            QueryError::Storage(storage) => Self::from(storage),
            other => Self::new(ErrorType::Internal, other.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    /// A storage that failed while answering: `internal`, except a
    /// cancelled read, which is the client's doing.
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Cancelled => Self::new(ErrorType::Canceled, error.to_string()),
            other => Self::new(ErrorType::Internal, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(64 + self.message.len());
        body.extend_from_slice(b"{\"status\":\"error\",\"errorType\":\"");
        body.extend_from_slice(self.kind.as_str().as_bytes());
        body.extend_from_slice(b"\",\"error\":");
        write_string(&mut body, &self.message);
        body.push(b'}');
        json_response(self.kind.status(), body)
    }
}

/// A successful answer: `{"status":"success","data":<data>}` plus
/// `warnings` and `infos` when there are any. `data` must be serialised
/// JSON.
pub fn success(data: &[u8], annotations: &Annotations) -> Response {
    let mut body = Vec::with_capacity(data.len() + 64);
    body.extend_from_slice(b"{\"status\":\"success\",\"data\":");
    body.extend_from_slice(data);
    write_annotations(&mut body, "warnings", "warning", annotations.warnings());
    write_annotations(&mut body, "infos", "info", annotations.infos());
    body.push(b'}');
    json_response(StatusCode::OK, body)
}

/// Serialises `data` (with Go's string escaping) and answers with it.
pub fn success_json<T: serde::Serialize + ?Sized>(
    data: &T,
    annotations: &Annotations,
) -> Result<Response, ApiError> {
    let data = super::json::to_vec(data).map_err(ApiError::internal)?;
    Ok(success(&data, annotations))
}

/// Appends `,"<field>":[...]` unless there are no messages; past
/// [`MAX_ANNOTATIONS`] the rest are counted, as Prometheus's
/// `Annotations.AsStrings` does.
fn write_annotations<'a>(
    out: &mut Vec<u8>,
    field: &str,
    kind: &str,
    messages: impl Iterator<Item = &'a str>,
) {
    let mut written = 0;
    let mut omitted = 0;
    for message in messages {
        if written == MAX_ANNOTATIONS {
            omitted += 1;
            continue;
        }
        out.extend_from_slice(if written == 0 { b",\"" } else { b"," });
        if written == 0 {
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":[");
        }
        write_string(out, message);
        written += 1;
    }
    if omitted > 0 {
        out.push(b',');
        write_string(out, &format!("{omitted} more {kind} annotations omitted"));
    }
    if written > 0 {
        out.push(b']');
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_match_prometheus() {
        let expected = [
            (ErrorType::BadData, 400),
            (ErrorType::Execution, 422),
            (ErrorType::Timeout, 503),
            (ErrorType::Canceled, 499),
            (ErrorType::Internal, 500),
            (ErrorType::Unavailable, 503),
            (ErrorType::NotFound, 404),
        ];
        for (kind, code) in expected {
            let response = ApiError::new(kind, "x").into_response();
            assert_eq!(response.status().as_u16(), code, "{kind:?}");
        }
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn envelopes_match_prometheus() {
        let error = ApiError::invalid_param("step", "bad <step>");
        assert_eq!(
            body(error.into_response()).await,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": bad \u003cstep\u003e"}"#
        );
        let mut annotations = Annotations::new();
        annotations.warn("w");
        annotations.info("i");
        assert_eq!(
            body(success(b"[]", &annotations)).await,
            r#"{"status":"success","data":[],"warnings":["w"],"infos":["i"]}"#
        );
        assert_eq!(
            body(success(b"{}", &Annotations::new())).await,
            r#"{"status":"success","data":{}}"#
        );
        let mut many = Annotations::new();
        for n in 0..12 {
            many.warn(format!("w{n}"));
        }
        let text = body(success(b"1", &many)).await;
        assert!(
            text.ends_with(r#""w9","2 more warning annotations omitted"]}"#),
            "{text}"
        );
    }

    #[test]
    fn engine_errors_map_to_prometheus_types() {
        let cases = [
            (
                QueryError::BadData("x".into()),
                ErrorType::BadData,
                "invalid parameter \"query\": x",
            ),
            (QueryError::Execution("e".into()), ErrorType::Execution, "e"),
            (
                QueryError::Timeout("query queue"),
                ErrorType::Timeout,
                "query timed out in query queue",
            ),
            (
                QueryError::Canceled("eval"),
                ErrorType::Canceled,
                "query was canceled in eval",
            ),
            (
                QueryError::Storage(StorageError::Closed),
                ErrorType::Internal,
                "storage is closed",
            ),
            (
                QueryError::Internal("bug".into()),
                ErrorType::Internal,
                "internal error: bug",
            ),
        ];
        for (error, kind, message) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.kind, kind);
            assert_eq!(api.message, message);
        }
    }
}

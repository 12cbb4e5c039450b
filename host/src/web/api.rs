//! The API's error vocabulary, in one place.
//!
//! Every `/api/v1` handler reports failure as an [`ApiError`], which renders
//! Prometheus's envelope (`{"status":"error","errorType":..,"error":..}`)
//! with Prometheus's HTTP status for each type, so clients that branch on
//! either keep working.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({ "status": "error", "errorType": self.kind.as_str(), "error": self.message });
        (self.kind.status(), Json(body)).into_response()
    }
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
}

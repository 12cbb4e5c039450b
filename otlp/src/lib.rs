//! OTLP metrics to Prometheus series: the translation behind Ember's
//! `POST /api/v1/otlp/v1/metrics`.
//!
//! OpenTelemetry SDKs and collectors push metrics as an
//! `ExportMetricsServiceRequest` (protobuf or JSON). This crate decodes it
//! ([`decode`]) and turns it into what Ember stores ([`translate`]): float
//! samples with Prometheus names and labels, exemplars, and per-family
//! metadata, following the OpenTelemetry specification's Prometheus
//! compatibility rules as Prometheus 3 applies them under its `otlp:`
//! settings ([`Settings`]). It does no I/O: the host appends the result
//! through the storage `Appender` in one transaction.
//!
//! Principal items:
//! - [`decode`] with [`Encoding`]: bytes to the request, or a [`DecodeError`];
//! - [`translate`] with [`Settings`] and [`DeltaState`]: the request to a
//!   [`Translation`] (samples, exemplars, metadata, refused points);
//! - [`naming`]: metric, label and unit names per translation strategy;
//! - [`exponential`]: exponential histograms on classic power-of-two buckets;
//! - [`delta`]: delta temporality cumulated per series.
//!
//! ```
//! use ember_otlp::{decode, translate, DeltaState, Encoding, Settings};
//!
//! let body = br#"{"resourceMetrics":[{"resource":{"attributes":[
//!     {"key":"service.name","value":{"stringValue":"shop"}}]},
//!   "scopeMetrics":[{"metrics":[{"name":"queue.size","unit":"{item}",
//!     "gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"7"}]}}]}]}]}"#;
//! let request = decode(body, Encoding::Json)?;
//! let out = translate(&request, &Settings::default(), &mut DeltaState::new(), 0);
//! assert_eq!(out.samples[0].labels.to_string(), r#"queue_size{job="shop"}"#);
//! assert_eq!((out.samples[0].t, out.samples[0].v), (1_700_000_000_000, 7.0));
//! # Ok::<(), ember_otlp::DecodeError>(())
//! ```

pub mod delta;
pub mod exponential;
pub mod naming;
mod translate;
#[cfg(test)]
mod translate_tests;

pub use delta::DeltaState;
pub use naming::Strategy;
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
pub use translate::{
    FamilyMetadata, NO_POINT, OutExemplar, OutSample, Settings, Translation, format_float,
    translate, value_as_string,
};

/// How a request body is encoded (from its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`: the OTLP JSON mapping (lowerCamelCase fields,
    /// hex trace ids, 64-bit integers as strings or numbers).
    Json,
}

/// A body that is not an export request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a valid protobuf `ExportMetricsServiceRequest`.
    #[error("decoding the protobuf request: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// Not a valid OTLP JSON request.
    #[error("decoding the JSON request: {0}")]
    Json(#[from] serde_json::Error),
}

/// Decodes an export request.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportMetricsServiceRequest, DecodeError> {
    Ok(match encoding {
        Encoding::Protobuf => prost::Message::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    })
}

/// Encodes the answer to an export request in the request's encoding.
pub fn encode_response(response: &ExportMetricsServiceResponse, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(response),
        // A full success is the empty message; serde would write
        // `"partialSuccess": null`.
        Encoding::Json if response.partial_success.is_none() => b"{}".to_vec(),
        // Serialising a plain message to JSON cannot fail.
        Encoding::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_responses_follow_the_otlp_json_mapping() {
        let ok = ExportMetricsServiceResponse::default();
        assert_eq!(encode_response(&ok, Encoding::Json), b"{}");
        assert!(encode_response(&ok, Encoding::Protobuf).is_empty());
        let partial = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 2,
                error_message: "out of order".to_owned(),
            }),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&encode_response(&partial, Encoding::Json)).unwrap();
        assert_eq!(json["partialSuccess"]["errorMessage"], "out of order");
        // int64 may be a string or a number in OTLP JSON.
        let rejected = &json["partialSuccess"]["rejectedDataPoints"];
        assert!(rejected == 2 || rejected == "2", "{json}");
    }
}

//! The remote read server's answers, built from any [`Queryable`]: the
//! SAMPLES [`prompb::ReadResponse`] and the STREAMED_XOR_CHUNKS frames,
//! as Prometheus's read handler builds them.
//!
//! - Response types are negotiated with [`negotiate`]: the first type of
//!   the request's `accepted_response_types` that Ember implements;
//!   SAMPLES when the list is empty.
//! - External labels ([`ReadOptions::external_labels`]) are added to every
//!   returned series that lacks them, and a query's equality matcher on an
//!   external label with the external value is turned into "the series
//!   itself has no such label", exactly as Prometheus does, so a reader
//!   that selects by the external labels it sees gets the data back.
//! - SAMPLES answers count samples against [`ReadOptions::sample_limit`]
//!   and fail with [`ReadError::SampleLimit`] beyond it (HTTP 400).
//! - Streamed answers send one series per frame, cut into several frames
//!   when its chunks exceed [`ReadOptions::max_bytes_in_frame`], with
//!   Prometheus XOR chunks of at most [`xor::SAMPLES_PER_CHUNK`] samples.
//!
//! ```
//! use ember_model::labels::Labels;
//! use ember_model::storage::{Appendable, MemStorage};
//! use ember_remote::prompb::{LabelMatcher, Query, ReadRequest};
//! use ember_remote::read::{ReadOptions, sampled_response};
//!
//! let storage = MemStorage::new();
//! let mut app = storage.appender();
//! app.append(None, &Labels::new([("__name__", "up")])?, 1_000, 1.0)?;
//! app.commit()?;
//!
//! let request = ReadRequest {
//!     queries: vec![Query {
//!         start_timestamp_ms: 0,
//!         end_timestamp_ms: 2_000,
//!         matchers: vec![LabelMatcher { r#type: 0, name: "__name__".into(), value: "up".into() }],
//!         hints: None,
//!     }],
//!     accepted_response_types: vec![],
//! };
//! let response = sampled_response(&storage, &request, &ReadOptions::default())?;
//! assert_eq!(response.results[0].timeseries[0].samples[0].value, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::storage::{Queryable, SelectHints, StorageError};
use prost::Message;

use crate::codec::write_frame;
use crate::prompb::{self, read_request::ResponseType};
use crate::xor::{self, XorEncoder};

/// Content type of a SAMPLES answer (snappy-compressed body).
pub const SAMPLES_CONTENT_TYPE: &str = "application/x-protobuf";
/// Content type of a STREAMED_XOR_CHUNKS answer (not compressed).
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// How the server answers remote read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Most samples in one SAMPLES answer; 0 means no limit
    /// (`--storage.remote.read-sample-limit`).
    pub sample_limit: usize,
    /// Frame size after which a streamed series is cut into another frame
    /// (`--storage.remote.read-max-bytes-in-frame`).
    pub max_bytes_in_frame: usize,
    /// The server's external labels (`global.external_labels`).
    pub external_labels: Labels,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            sample_limit: 5e7 as usize,
            max_bytes_in_frame: 1024 * 1024,
            external_labels: Labels::EMPTY,
        }
    }
}

/// Why a read could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The request is invalid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// None of the accepted response types is implemented (HTTP 400).
    #[error("none of the accepted response types {0:?} is supported")]
    UnsupportedResponseType(Vec<i32>),
    /// The SAMPLES answer would exceed the sample limit (HTTP 400).
    #[error("exceeded sample limit ({0})")]
    SampleLimit(usize),
    /// The storage failed (HTTP 500).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing a frame failed (the client went away); nothing to answer.
    #[error("sending a frame: {0}")]
    Send(String),
}

/// Picks the response type: the first of `accepted` that Ember implements,
/// SAMPLES when `accepted` is empty.
pub fn negotiate(accepted: &[i32]) -> Result<ResponseType, ReadError> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    accepted
        .iter()
        .find_map(|&t| ResponseType::try_from(t).ok())
        .ok_or_else(|| ReadError::UnsupportedResponseType(accepted.to_vec()))
}

/// Converts protobuf matchers to the model's.
pub fn to_matchers(matchers: &[prompb::LabelMatcher]) -> Result<Vec<Matcher>, ReadError> {
    use prompb::label_matcher::Type;
    matchers
        .iter()
        .map(|m| {
            let op = match Type::try_from(m.r#type) {
                Ok(Type::Eq) => MatchOp::Equal,
                Ok(Type::Neq) => MatchOp::NotEqual,
                Ok(Type::Re) => MatchOp::Regex,
                Ok(Type::Nre) => MatchOp::NotRegex,
                Err(_) => {
                    return Err(ReadError::BadRequest(format!(
                        "invalid matcher type {}",
                        m.r#type
                    )));
                }
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| ReadError::BadRequest(format!("invalid matcher: {e}")))
        })
        .collect()
}

/// Converts the model's matchers to protobuf (for clients).
pub fn from_matchers(matchers: &[Matcher]) -> Vec<prompb::LabelMatcher> {
    use prompb::label_matcher::Type;
    matchers
        .iter()
        .map(|m| prompb::LabelMatcher {
            r#type: match m.op() {
                MatchOp::Equal => Type::Eq,
                MatchOp::NotEqual => Type::Neq,
                MatchOp::Regex => Type::Re,
                MatchOp::NotRegex => Type::Nre,
            } as i32,
            name: m.name().to_owned(),
            value: m.value().to_owned(),
        })
        .collect()
}

/// Protobuf labels of a label set.
pub fn to_proto_labels(labels: &Labels) -> Vec<prompb::Label> {
    labels
        .iter()
        .map(|(name, value)| prompb::Label {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect()
}

/// A series' labels with the external labels it lacks added.
fn with_external(labels: &Labels, external: &Labels) -> Vec<prompb::Label> {
    if external.is_empty() {
        return to_proto_labels(labels);
    }
    let mut merged: Vec<(&str, &str)> = labels.iter().collect();
    for (name, value) in external.iter() {
        if !labels.has(name) {
            merged.push((name, value));
        }
    }
    merged.sort_unstable_by(|a, b| a.0.cmp(b.0));
    merged
        .into_iter()
        .map(|(name, value)| prompb::Label {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect()
}

/// The query's matchers with Prometheus's external-label rewrite (see the
/// [module docs](self)).
fn query_matchers(query: &prompb::Query, external: &Labels) -> Result<Vec<Matcher>, ReadError> {
    let mut matchers = to_matchers(&query.matchers)?;
    for m in &mut matchers {
        if m.op() == MatchOp::Equal && external.get(m.name()).is_some_and(|v| v == m.value()) {
            *m = Matcher::equal(m.name(), "");
        }
    }
    Ok(matchers)
}

fn select_hints(query: &prompb::Query) -> SelectHints {
    match &query.hints {
        Some(h) => SelectHints {
            start: h.start_ms,
            end: h.end_ms,
            step: h.step_ms,
            range: h.range_ms,
            func: (!h.func.is_empty()).then(|| h.func.clone()),
            grouping: h.grouping.clone(),
            by: h.by,
            ..SelectHints::default()
        },
        None => SelectHints {
            start: query.start_timestamp_ms,
            end: query.end_timestamp_ms,
            ..SelectHints::default()
        },
    }
}

/// Builds the SAMPLES answer to every query of `request`.
pub fn sampled_response(
    queryable: &dyn Queryable,
    request: &prompb::ReadRequest,
    options: &ReadOptions,
) -> Result<prompb::ReadResponse, ReadError> {
    let mut total = 0usize;
    let mut results = Vec::with_capacity(request.queries.len());
    for query in &request.queries {
        let matchers = query_matchers(query, &options.external_labels)?;
        let hints = select_hints(query);
        let querier = queryable.querier(query.start_timestamp_ms, query.end_timestamp_ms)?;
        let mut set = querier.select(true, Some(&hints), &matchers)?;
        let mut timeseries = Vec::new();
        for series in set.by_ref() {
            let series = series?;
            let mut it = series.samples();
            let mut samples = Vec::new();
            while it.next() {
                let s = it.at();
                samples.push(prompb::Sample {
                    value: s.v,
                    timestamp: s.t,
                });
            }
            if let Some(e) = it.err() {
                return Err(e.clone().into());
            }
            total += samples.len();
            if options.sample_limit > 0 && total > options.sample_limit {
                return Err(ReadError::SampleLimit(options.sample_limit));
            }
            if samples.is_empty() {
                continue;
            }
            timeseries.push(prompb::TimeSeries {
                labels: with_external(series.labels(), &options.external_labels),
                samples,
                ..Default::default()
            });
        }
        results.push(prompb::QueryResult { timeseries });
    }
    Ok(prompb::ReadResponse { results })
}

/// Streams the STREAMED_XOR_CHUNKS answer to every query of `request`:
/// `send` gets each frame (length, checksum and message) in order and may
/// fail when the client is gone, which stops the stream.
pub fn stream_chunked(
    queryable: &dyn Queryable,
    request: &prompb::ReadRequest,
    options: &ReadOptions,
    send: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<(), ReadError> {
    for (index, query) in request.queries.iter().enumerate() {
        let matchers = query_matchers(query, &options.external_labels)?;
        let hints = select_hints(query);
        let querier = queryable.querier(query.start_timestamp_ms, query.end_timestamp_ms)?;
        let mut set = querier.select(true, Some(&hints), &matchers)?;
        for series in set.by_ref() {
            let series = series?;
            let labels = with_external(series.labels(), &options.external_labels);
            let mut chunks = Vec::new();
            let mut frame_bytes = 0usize;
            let mut encoder = XorEncoder::new();
            let mut flush_frame = |chunks: &mut Vec<prompb::Chunk>| -> Result<(), ReadError> {
                let message = prompb::ChunkedReadResponse {
                    chunked_series: vec![prompb::ChunkedSeries {
                        labels: labels.clone(),
                        chunks: std::mem::take(chunks),
                    }],
                    query_index: index as i64,
                };
                let mut frame = Vec::with_capacity(message.encoded_len() + 15);
                write_frame(&mut frame, &message.encode_to_vec());
                send(frame).map_err(ReadError::Send)
            };
            let mut it = series.samples();
            while it.next() {
                let s = it.at();
                encoder.append(s.t, s.v);
                if encoder.len() >= xor::SAMPLES_PER_CHUNK {
                    let chunk = seal(std::mem::take(&mut encoder));
                    frame_bytes += chunk.encoded_len();
                    chunks.push(chunk);
                    if frame_bytes >= options.max_bytes_in_frame {
                        flush_frame(&mut chunks)?;
                        frame_bytes = 0;
                    }
                }
            }
            if let Some(e) = it.err() {
                return Err(e.clone().into());
            }
            if !encoder.is_empty() {
                chunks.push(seal(encoder));
            }
            if !chunks.is_empty() {
                flush_frame(&mut chunks)?;
            }
        }
    }
    Ok(())
}

/// Turns a finished encoder into a protobuf chunk.
fn seal(encoder: XorEncoder) -> prompb::Chunk {
    prompb::Chunk {
        min_time_ms: encoder.min_time(),
        max_time_ms: encoder.max_time(),
        r#type: prompb::chunk::Encoding::Xor as i32,
        data: encoder.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameReader;
    use crate::xor::XorIterator;
    use ember_model::storage::{Appendable, MemStorage};

    fn storage(series: &[(&str, usize)]) -> MemStorage {
        let storage = MemStorage::new();
        let mut app = storage.appender();
        for (name, n) in series {
            let labels = Labels::new([("__name__", *name), ("job", "j")]).unwrap();
            for i in 0..*n {
                app.append(None, &labels, i as i64 * 1_000, i as f64)
                    .unwrap();
            }
        }
        app.commit().unwrap();
        storage
    }

    fn request(matchers: Vec<prompb::LabelMatcher>, end: i64) -> prompb::ReadRequest {
        prompb::ReadRequest {
            queries: vec![prompb::Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: end,
                matchers,
                hints: None,
            }],
            accepted_response_types: vec![1],
        }
    }

    fn eq(name: &str, value: &str) -> prompb::LabelMatcher {
        prompb::LabelMatcher {
            r#type: 0,
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn negotiation_takes_the_first_known_type() {
        assert_eq!(negotiate(&[]).unwrap(), ResponseType::Samples);
        assert_eq!(
            negotiate(&[7, 1, 0]).unwrap(),
            ResponseType::StreamedXorChunks
        );
        assert!(matches!(
            negotiate(&[7]),
            Err(ReadError::UnsupportedResponseType(_))
        ));
    }

    #[test]
    fn sampled_answer_honours_range_external_labels_and_limit() {
        let s = storage(&[("a", 10), ("b", 3)]);
        let options = ReadOptions {
            external_labels: Labels::new([("region", "eu"), ("job", "ignored")]).unwrap(),
            ..ReadOptions::default()
        };
        // The external-label matcher is satisfied by the external label.
        let req = request(vec![eq("__name__", "a"), eq("region", "eu")], 4_000);
        let r = sampled_response(&s, &req, &options).unwrap();
        let series = &r.results[0].timeseries;
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].samples.len(), 5);
        let labels: Vec<(&str, &str)> = series[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![("__name__", "a"), ("job", "j"), ("region", "eu")]
        );

        let limited = ReadOptions {
            sample_limit: 12,
            ..ReadOptions::default()
        };
        let all = request(vec![eq("job", "j")], 100_000);
        assert!(matches!(
            sampled_response(&s, &all, &limited),
            Err(ReadError::SampleLimit(12))
        ));
    }

    #[test]
    fn streamed_answer_round_trips_and_splits_frames() {
        let s = storage(&[("a", 1_000), ("b", 7)]);
        let options = ReadOptions {
            max_bytes_in_frame: 1,
            ..ReadOptions::default()
        };
        let mut stream = Vec::new();
        let mut frames = 0;
        stream_chunked(
            &s,
            &request(vec![eq("job", "j")], i64::MAX),
            &options,
            &mut |f| {
                frames += 1;
                stream.extend(f);
                Ok(())
            },
        )
        .unwrap();
        // a: 1000 samples = 9 chunks, one frame each with a 1-byte limit;
        // b: one chunk.
        assert_eq!(frames, 10);
        let mut reader = FrameReader::new(&stream, 1 << 20);
        let mut got: Vec<(String, i64, f64)> = vec![];
        while let Some(frame) = reader.next_frame().unwrap() {
            let msg = prompb::ChunkedReadResponse::decode(frame).unwrap();
            assert_eq!(msg.query_index, 0);
            for cs in msg.chunked_series {
                for c in cs.chunks {
                    assert_eq!(c.r#type, prompb::chunk::Encoding::Xor as i32);
                    let samples: Vec<(i64, f64)> = XorIterator::new(&c.data)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    assert_eq!(samples.first().unwrap().0, c.min_time_ms);
                    assert_eq!(samples.last().unwrap().0, c.max_time_ms);
                    for (t, v) in samples {
                        got.push((cs.labels[0].value.clone(), t, v));
                    }
                }
            }
        }
        let mut want = vec![];
        for (name, n) in [("a", 1_000), ("b", 7)] {
            for i in 0..n {
                want.push((name.to_string(), i as i64 * 1_000, i as f64));
            }
        }
        assert_eq!(got, want);
    }
}

//! The `remote_read:` client: PromQL and the HTTP API read remote
//! endpoints alongside the local TSDB.
//!
//! [`FanoutStorage`] is the storage the query side uses: appends go to the
//! local storage only; a querier merges the local querier with one
//! [`RemoteQuerier`] per configured endpoint ([`merge::MergeQuerier`]).
//! Series with the same labels from several sources are merged sample by
//! sample (the local sample wins on equal timestamps), as Prometheus's
//! fan-out storage does. A remote endpoint that fails turns into a warning
//! on the result, never a failed query: the local data is still right.
//!
//! Per endpoint, as Prometheus:
//! - `required_matchers`: the endpoint is asked only for selectors that
//!   contain every one of them as an equality matcher;
//! - `read_recent: false` (the default): the endpoint is asked only for the
//!   time before the oldest local sample, which the local storage covers
//!   otherwise;
//! - `filter_external_labels` (default true): the server's external labels
//!   are sent as equality matchers and removed from the returned series;
//! - headers, authentication and TLS through [`HttpClient`];
//!   `remote_timeout` bounds each request;
//! - the client accepts STREAMED_XOR_CHUNKS first, then SAMPLES, and
//!   decodes whichever the server answers with; `chunked_read_limit` bounds
//!   a streamed frame.
//!
//! The client list follows configuration reloads.

pub mod merge;

use std::sync::{Arc, RwLock};

use ember_config::{Config, RemoteReadConfig};
use ember_model::labels::{Labels, LabelsBuilder};
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample;
use ember_model::storage::{
    Annotations, Appendable, Appender, LabelQueryResult, Querier, Queryable, SampleIterator,
    SelectHints, SeriesSet, Storage, StorageError,
};
use ember_remote::codec::{FrameReader, compress, decompress};
use ember_remote::prompb::{self, read_request::ResponseType};
use ember_remote::read::from_matchers;
use ember_remote::xor::XorIterator;
use prost::Message;
use tokio::runtime::Handle;

use crate::http_client::HttpClient;
use crate::reload::ConfigManager;

/// Largest SAMPLES answer accepted (decompressed), a guard against a
/// misbehaving endpoint.
const MAX_SAMPLES_RESPONSE: usize = 1 << 30;

/// Why a remote read failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteReadError {
    #[error("remote read {name}: {message}")]
    Failed { name: String, message: String },
}

/// One configured endpoint.
#[derive(Debug)]
pub struct RemoteReadClient {
    name: String,
    config: RemoteReadConfig,
    client: HttpClient,
    external_labels: Labels,
    handle: Handle,
}

impl RemoteReadClient {
    /// Builds the client for `config`; `index` names unnamed endpoints.
    pub fn new(
        config: &RemoteReadConfig,
        index: usize,
        external_labels: Labels,
        handle: Handle,
    ) -> Result<Self, crate::http_client::HttpClientError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("remote_read[{index}]"));
        let client = HttpClient::new(&config.http_client, &name)?;
        Ok(Self {
            name,
            config: config.clone(),
            client,
            external_labels,
            handle,
        })
    }

    fn fail(&self, message: impl std::fmt::Display) -> RemoteReadError {
        RemoteReadError::Failed {
            name: self.name.clone(),
            message: message.to_string(),
        }
    }

    /// Whether `matchers` contain every required matcher.
    fn wanted(&self, matchers: &[Matcher]) -> bool {
        self.config.required_matchers.iter().all(|(name, value)| {
            matchers
                .iter()
                .any(|m| m.op() == MatchOp::Equal && m.name() == name && m.value() == value)
        })
    }

    /// Runs one query, blocking the calling thread (queriers are called
    /// from the query engine's blocking pool).
    fn read(
        &self,
        mint: i64,
        maxt: i64,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteReadError> {
        let mut matchers = matchers.to_vec();
        let mut added: Vec<String> = Vec::new();
        if self.config.filter_external_labels {
            for (name, value) in self.external_labels.iter() {
                matchers.retain(|m| m.name() != name);
                matchers.push(Matcher::equal(name, value));
                added.push(name.to_owned());
            }
        }
        let query = prompb::Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers: from_matchers(&matchers),
            hints: hints.map(|h| prompb::ReadHints {
                step_ms: h.step,
                func: h.func.clone().unwrap_or_default(),
                start_ms: h.start,
                end_ms: h.end,
                grouping: h.grouping.clone(),
                by: h.by,
                range_ms: h.range,
            }),
        };
        let request = prompb::ReadRequest {
            queries: vec![query],
            accepted_response_types: vec![
                ResponseType::StreamedXorChunks as i32,
                ResponseType::Samples as i32,
            ],
        };
        let body = compress(&request.encode_to_vec());
        let builder = self
            .client
            .post(self.config.url.as_str())
            .map_err(|e| self.fail(e))?
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .timeout(self.config.remote_timeout)
            .body(body);
        let fetch = async {
            let response = builder.send().await.map_err(|e| self.fail(e))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let bytes = response.bytes().await.map_err(|e| self.fail(e))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
                return Err(self.fail(format!(
                    "server returned HTTP status {status}: {}",
                    text.trim()
                )));
            }
            Ok((content_type, bytes))
        };
        let (content_type, bytes) = block_on(&self.handle, fetch)?;
        let mut series = if content_type.starts_with("application/x-streamed-protobuf") {
            self.decode_streamed(&bytes)?
        } else {
            self.decode_samples(&bytes)?
        };
        // Streamed answers carry whole chunks, which may reach outside the
        // range; the querier contract wants exactly `[mint, maxt]`.
        for (_, samples) in &mut series {
            samples.retain(|s| mint <= s.t && s.t <= maxt);
        }
        if !added.is_empty() {
            for (labels, _) in &mut series {
                let mut builder = LabelsBuilder::new(labels.clone());
                for name in &added {
                    builder.del(name);
                }
                *labels = builder.labels();
            }
        }
        Ok(series)
    }

    fn decode_samples(&self, bytes: &[u8]) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteReadError> {
        let body = decompress(bytes, MAX_SAMPLES_RESPONSE).map_err(|e| self.fail(e))?;
        let response = prompb::ReadResponse::decode(body.as_slice()).map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for result in response.results {
            for ts in result.timeseries {
                let labels = labels_of(&ts.labels).map_err(|e| self.fail(e))?;
                let samples = ts
                    .samples
                    .iter()
                    .map(|s| Sample {
                        t: s.timestamp,
                        v: s.value,
                    })
                    .collect();
                out.push((labels, samples));
            }
        }
        Ok(out)
    }

    fn decode_streamed(&self, bytes: &[u8]) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteReadError> {
        let limit = usize::try_from(self.config.chunked_read_limit).unwrap_or(usize::MAX);
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut frames = FrameReader::new(bytes, limit);
        let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
        while let Some(frame) = frames.next_frame().map_err(|e| self.fail(e))? {
            let message = prompb::ChunkedReadResponse::decode(frame).map_err(|e| self.fail(e))?;
            for cs in message.chunked_series {
                let labels = labels_of(&cs.labels).map_err(|e| self.fail(e))?;
                // A series split over frames arrives in consecutive frames.
                let continues = out.last().is_some_and(|(l, _)| *l == labels);
                if !continues {
                    out.push((labels, Vec::new()));
                }
                let samples = &mut out.last_mut().expect("pushed above").1;
                for chunk in cs.chunks {
                    if chunk.r#type != prompb::chunk::Encoding::Xor as i32 {
                        return Err(self.fail(format!(
                            "unsupported chunk encoding {} (only XOR float chunks are)",
                            chunk.r#type
                        )));
                    }
                    for sample in XorIterator::new(&chunk.data).map_err(|e| self.fail(e))? {
                        let (t, v) = sample.map_err(|e| self.fail(e))?;
                        // Chunks may overlap; keep timestamps strictly
                        // increasing.
                        if samples.last().is_none_or(|s: &Sample| s.t < t) {
                            samples.push(Sample { t, v });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Runs a future to completion from synchronous code, whether or not the
/// calling thread is one of the runtime's async workers.
fn block_on<F: std::future::Future>(handle: &Handle, future: F) -> F::Output {
    match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        _ => handle.block_on(future),
    }
}

fn labels_of(labels: &[prompb::Label]) -> Result<Labels, String> {
    Labels::new(
        labels
            .iter()
            .filter(|l| !l.value.is_empty())
            .map(|l| (l.name.as_str(), l.value.as_str())),
    )
    .map_err(|e| e.to_string())
}

/// The storage of the query side: local appends, local + remote reads.
pub struct FanoutStorage {
    local: Arc<dyn Storage>,
    remotes: RwLock<Arc<Vec<Arc<RemoteReadClient>>>>,
    /// The oldest local timestamp, for `read_recent: false`.
    local_start: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for FanoutStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutStorage")
            .field("remotes", &self.remotes)
            .finish_non_exhaustive()
    }
}

impl FanoutStorage {
    /// A fan-out over `local` and the `remote_read` endpoints of the
    /// current configuration, following reloads. `local_start` tells the
    /// oldest local timestamp (`i64::MAX` when the storage is empty).
    pub fn start(
        local: Arc<dyn Storage>,
        config: &ConfigManager,
        local_start: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Arc<Self> {
        let fanout = Arc::new(Self {
            local,
            remotes: RwLock::new(Arc::new(Vec::new())),
            local_start: Box::new(local_start),
        });
        let mut rx = config.subscribe();
        fanout.apply_config(&rx.borrow_and_update().clone());
        let weak = Arc::downgrade(&fanout);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let config = rx.borrow_and_update().clone();
                let Some(fanout) = weak.upgrade() else { break };
                fanout.apply_config(&config);
            }
        });
        fanout
    }

    /// Rebuilds the endpoint list from `config`. An endpoint whose HTTP
    /// client cannot be built (say, a TLS file that went missing) is left
    /// out with an error log; the others still serve.
    pub fn apply_config(&self, config: &Config) {
        let external = Labels::new(&config.global.external_labels).unwrap_or_default();
        let handle = Handle::current();
        let clients: Vec<Arc<RemoteReadClient>> = config
            .remote_read
            .iter()
            .enumerate()
            .filter_map(
                |(i, c)| match RemoteReadClient::new(c, i, external.clone(), handle.clone()) {
                    Ok(client) => Some(Arc::new(client)),
                    Err(error) => {
                        tracing::error!(endpoint = i, url = %c.url, %error, "Remote read endpoint disabled");
                        None
                    }
                },
            )
            .collect();
        *self.remotes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(clients);
    }
}

impl Appendable for FanoutStorage {
    fn appender(&self) -> Box<dyn Appender> {
        self.local.appender()
    }
}

impl Queryable for FanoutStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        let local = self.local.querier(mint, maxt)?;
        let remotes = self
            .remotes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if remotes.is_empty() {
            return Ok(local);
        }
        let mut queriers: Vec<Box<dyn Querier>> = vec![local];
        let mut local_start = None;
        for client in remotes.iter() {
            let mut maxt = maxt;
            if !client.config.read_recent {
                let start = *local_start.get_or_insert_with(|| (self.local_start)());
                if mint > start {
                    continue;
                }
                maxt = maxt.min(start);
            }
            queriers.push(Box::new(RemoteQuerier {
                client: client.clone(),
                mint,
                maxt,
            }));
        }
        Ok(Box::new(merge::MergeQuerier::new(queriers)))
    }
}

/// One endpoint over `[mint, maxt]`.
#[derive(Debug)]
struct RemoteQuerier {
    client: Arc<RemoteReadClient>,
    mint: i64,
    maxt: i64,
}

impl Querier for RemoteQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        let mut annotations = Annotations::default();
        let mut series = Vec::new();
        if self.client.wanted(matchers) {
            match self.client.read(self.mint, self.maxt, hints, matchers) {
                Ok(s) => series = s,
                Err(error) => {
                    tracing::warn!(%error, "Remote read failed; answering from the other sources");
                    annotations.warn(error.to_string());
                }
            }
        }
        if hints.is_some_and(|h| h.func.as_deref() == Some("series")) {
            for (_, samples) in &mut series {
                samples.clear();
            }
        }
        // Series must come sorted and unique for the merge.
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1.append(&mut b.1);
                a.1.sort_by_key(|s| s.t);
                a.1.dedup_by_key(|s| s.t);
                true
            } else {
                false
            }
        });
        let series = series
            .into_iter()
            .filter(|(_, s)| {
                hints.is_some_and(|h| h.func.as_deref() == Some("series")) || !s.is_empty()
            })
            .collect();
        Ok(Box::new(merge::VecSeriesSet::new(series, annotations)))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        // Remote read has no label API: derive from the series, as
        // Prometheus's remote querier does.
        let set = self.select(true, None, matchers)?;
        let annotations = set.annotations().clone();
        let mut values: Vec<String> = merge::collect_labels(set)
            .iter()
            .filter_map(|l| l.get(name).map(str::to_owned))
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        if let Some(limit) = limit {
            values.truncate(limit);
        }
        Ok(LabelQueryResult {
            values,
            annotations,
        })
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let set = self.select(true, None, matchers)?;
        let annotations = set.annotations().clone();
        let mut values: Vec<String> = merge::collect_labels(set)
            .iter()
            .flat_map(|l| l.names().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        values.sort();
        values.dedup();
        if let Some(limit) = limit {
            values.truncate(limit);
        }
        Ok(LabelQueryResult {
            values,
            annotations,
        })
    }
}

/// Convenience for [`Series`] implementations over owned samples.
pub(crate) struct VecSamples<'a> {
    samples: &'a [Sample],
    /// Index of the current sample plus one (0: before the first).
    pos: usize,
}

impl<'a> VecSamples<'a> {
    pub(crate) fn new(samples: &'a [Sample]) -> Self {
        Self { samples, pos: 0 }
    }
}

impl SampleIterator for VecSamples<'_> {
    fn next(&mut self) -> bool {
        if self.pos < self.samples.len() {
            self.pos += 1;
            true
        } else {
            self.pos = self.samples.len() + 1;
            false
        }
    }

    fn seek(&mut self, t: i64) -> bool {
        if self.pos > self.samples.len() {
            return false;
        }
        if self.pos > 0 && self.samples[self.pos - 1].t >= t {
            return true;
        }
        let from = self.pos.saturating_sub(1);
        let idx = from + self.samples[from..].partition_point(|s| s.t < t);
        if idx < self.samples.len() {
            self.pos = idx + 1;
            true
        } else {
            self.pos = self.samples.len() + 1;
            false
        }
    }

    fn at(&self) -> Sample {
        self.samples
            .get(self.pos.wrapping_sub(1))
            .copied()
            .unwrap_or(Sample { t: 0, v: 0.0 })
    }

    fn err(&self) -> Option<&StorageError> {
        None
    }
}

//! Remote-write queues from the configuration: one
//! [`ember_remote_write::Queue`] per `remote_write` entry, sending over
//! HTTP with the entry's [`HttpClient`] (auth, headers, TLS, proxy), or to a
//! remote-storage plugin (`plugin: <name>`) through
//! [`RemoteStoragePlugin`].
//!
//! [`RemoteWriteManager::apply_config`] runs at start-up and on every
//! accepted reload: a queue whose entry (and the external labels) did not
//! change keeps running untouched; a changed one is stopped, flushing for
//! at most [`RELOAD_FLUSH_DEADLINE`], and started again from its progress
//! marker; a removed one is stopped. [`RemoteWriteManager::stop`] is a step
//! of the server's shutdown order, after scraping and HTTP stopped and
//! before the TSDB closes.
//!
//! Queues are identified by their `name`, or their URL (plugin) when unnamed: the
//! identity names the progress marker under `<data>/remote_write/`, so
//! editing anything else of an entry resumes where it was.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ember_config::{Config, RemoteWriteConfig, RemoteWriteDestination, RemoteWriteMessage};
use ember_remote_write::{
    Batch, Destination, ProgressFile, Protocol, Queue, QueueSettings, SendFuture, SendOutcome,
    SenderMetrics,
};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};

use crate::http_client::HttpClient;
use crate::plugins::PluginManager;
use crate::plugins::remote_storage::{RemoteStoragePlugin, Series, WriteOutcome};

/// How long a queue being replaced by a reload may flush.
pub const RELOAD_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// How long queues may flush at shutdown (Prometheus's
/// `--storage.remote.flush-deadline` is 1m; unsent samples are not lost
/// here, they are resent after the restart).
pub const SHUTDOWN_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The `remote_write` section made live.
#[derive(Debug)]
pub struct RemoteWriteManager {
    wal_dir: PathBuf,
    progress_dir: PathBuf,
    metrics: SenderMetrics,
    plugins: Option<Arc<PluginManager>>,
    queues: tokio::sync::Mutex<HashMap<String, Running>>,
}

#[derive(Debug)]
struct Running {
    config: RemoteWriteConfig,
    external_labels: Vec<(String, String)>,
    queue: Queue,
}

impl RemoteWriteManager {
    /// A manager for the TSDB in `data_dir`, registering the queue metrics.
    /// `plugins` serves `plugin:` destinations.
    ///
    /// # Errors
    /// When the metrics are registered already.
    pub fn new(
        data_dir: &Path,
        registry: &prometheus::Registry,
        plugins: Option<Arc<PluginManager>>,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            wal_dir: data_dir.join("wal"),
            progress_dir: data_dir.join("remote_write"),
            metrics: SenderMetrics::register(registry)?,
            plugins,
            queues: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Starts, restarts and stops queues to match `config`.
    pub async fn apply_config(&self, config: &Config) {
        let external_labels: Vec<(String, String)> = config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut wanted: HashMap<String, &RemoteWriteConfig> = HashMap::new();
        for entry in &config.remote_write {
            let target = target_of(entry);
            let mut key = entry.name.clone().unwrap_or_else(|| target.clone());
            // Two unnamed entries with one URL are still two queues.
            let mut n = 1;
            while wanted.contains_key(&key) {
                n += 1;
                key = format!("{target}#{n}");
            }
            wanted.insert(key, entry);
        }
        let mut queues = self.queues.lock().await;
        let keys: Vec<String> = queues.keys().cloned().collect();
        for key in keys {
            let keep = wanted.get(&key).is_some_and(|entry| {
                let running = &queues[&key];
                running.config == **entry && running.external_labels == external_labels
            });
            if keep {
                wanted.remove(&key);
                continue;
            }
            if let Some(running) = queues.remove(&key) {
                let metrics = running.queue.metrics().clone();
                running.queue.stop(RELOAD_FLUSH_DEADLINE).await;
                if !wanted.contains_key(&key) {
                    metrics.remove();
                }
            }
        }
        for (key, entry) in wanted {
            match self.start_queue(&key, entry, &external_labels) {
                Ok(queue) => {
                    queues.insert(
                        key,
                        Running {
                            config: entry.clone(),
                            external_labels: external_labels.clone(),
                            queue,
                        },
                    );
                }
                Err(error) => tracing::error!(
                    url = %target_of(entry),
                    %error,
                    "Cannot start remote-write queue; it stays off until the next reload"
                ),
            }
        }
    }

    fn start_queue(
        &self,
        key: &str,
        entry: &RemoteWriteConfig,
        external_labels: &[(String, String)],
    ) -> anyhow::Result<Queue> {
        let url = target_of(entry);
        let remote_name = entry.name.clone().unwrap_or_else(|| {
            // Prometheus names unnamed queues after a hash of their
            // configuration; the URL's is stable across unrelated edits.
            format!("{:016x}", xxhash_rust::xxh64::xxh64(url.as_bytes(), 0))[..6].to_owned()
        });
        let protocol = match entry.protobuf_message {
            RemoteWriteMessage::V1 => Protocol::V1,
            RemoteWriteMessage::V2 => Protocol::V2,
        };
        let destination: Arc<dyn Destination> = match &entry.destination {
            RemoteWriteDestination::Url(endpoint) => {
                Arc::new(HttpDestination::new(endpoint.as_str(), entry, protocol)?)
            }
            RemoteWriteDestination::Plugin(name) => {
                let manager = self.plugins.clone().ok_or_else(|| {
                    anyhow::anyhow!("remote-storage plugin {name:?}: plugins are not available")
                })?;
                Arc::new(PluginDestination(RemoteStoragePlugin::new(
                    manager,
                    name.clone(),
                )))
            }
        };
        let mut settings = QueueSettings::new(
            remote_name.clone(),
            url.clone(),
            self.wal_dir.clone(),
            ProgressFile::new(&self.progress_dir, key),
        );
        settings.protocol = protocol;
        settings.queue = entry.queue_config;
        settings.metadata = entry.metadata_config;
        settings.external_labels = external_labels.to_vec();
        settings.write_relabel_configs = entry.write_relabel_configs.clone();
        let metrics = self.metrics.queue(&remote_name, &url);
        Ok(Queue::start(settings, destination, metrics)?)
    }

    /// Stops every queue, flushing for at most `deadline` (shared by all).
    pub async fn stop(&self, deadline: Duration) {
        let queues: Vec<Running> = self.queues.lock().await.drain().map(|(_, r)| r).collect();
        let stops = queues.into_iter().map(|r| r.queue.stop(deadline));
        futures_join_all(stops).await;
    }
}

/// The `url` label of a queue: its endpoint, or `plugin:<name>`.
fn target_of(entry: &RemoteWriteConfig) -> String {
    match &entry.destination {
        RemoteWriteDestination::Url(url) => url.to_string(),
        RemoteWriteDestination::Plugin(name) => format!("plugin:{name}"),
    }
}

/// Runs the futures concurrently to completion.
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for handle in handles {
        let _ = handle.await;
    }
}

/// A remote-write receiver over HTTP.
#[derive(Debug)]
struct HttpDestination {
    client: HttpClient,
    url: String,
    timeout: Duration,
    protocol: Protocol,
    headers: Vec<(HeaderName, HeaderValue)>,
    retry_on_http_429: bool,
}

impl HttpDestination {
    fn new(url: &str, entry: &RemoteWriteConfig, protocol: Protocol) -> anyhow::Result<Self> {
        let client = HttpClient::new(&entry.http_client, "remote_write")?;
        let mut headers = Vec::new();
        for (name, value) in &entry.headers {
            headers.push((
                HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            ));
        }
        Ok(Self {
            client,
            url: url.to_owned(),
            timeout: entry.remote_timeout,
            protocol,
            headers,
            retry_on_http_429: entry.queue_config.retry_on_http_429,
        })
    }

    async fn post(&self, batch: &Batch) -> SendOutcome {
        let request = match self.client.post(&self.url) {
            Ok(request) => request,
            // A credentials file that cannot be read now may be readable
            // later.
            Err(error) => {
                return SendOutcome::Retryable {
                    message: error.to_string(),
                    retry_after: None,
                };
            }
        };
        let mut request = request
            .header(CONTENT_ENCODING, "snappy")
            .header(CONTENT_TYPE, self.protocol.content_type())
            .header(
                "X-Prometheus-Remote-Write-Version",
                self.protocol.version_header(),
            )
            .timeout(self.timeout);
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        let response = match request.body(batch.payload().to_vec()).send().await {
            Ok(response) => response,
            Err(error) => {
                return SendOutcome::Retryable {
                    message: format!("{error:#}"),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return SendOutcome::Sent;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(body.floor_char_boundary(512));
        let message = format!("server returned HTTP status {status}: {}", body.trim());
        let retryable = status.is_server_error()
            || (status == reqwest::StatusCode::TOO_MANY_REQUESTS && self.retry_on_http_429);
        if retryable {
            SendOutcome::Retryable {
                message,
                retry_after,
            }
        } else {
            SendOutcome::Permanent { message }
        }
    }
}

impl Destination for HttpDestination {
    fn send<'a>(&'a self, batch: &'a Batch) -> SendFuture<'a> {
        Box::pin(async move {
            if batch.series.is_empty() && batch.metadata.is_empty() {
                return SendOutcome::Sent;
            }
            self.post(batch).await
        })
    }
}

/// A remote-storage plugin: batches go through [`RemoteStoragePlugin::write`]
/// as series with their samples; metadata is not sent (the plugin contract
/// has no place for it).
#[derive(Debug)]
struct PluginDestination(RemoteStoragePlugin);

impl Destination for PluginDestination {
    fn send<'a>(&'a self, batch: &'a Batch) -> SendFuture<'a> {
        Box::pin(async move {
            if batch.series.is_empty() {
                return SendOutcome::Sent;
            }
            let series = batch
                .series
                .iter()
                .map(|s| Series {
                    labels: s
                        .series
                        .labels
                        .iter()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                    samples: s.samples.iter().map(|x| (x.t, x.v)).collect(),
                })
                .collect();
            match self.0.write(series).await {
                WriteOutcome::Ok => SendOutcome::Sent,
                WriteOutcome::Retryable {
                    message,
                    retry_after,
                } => SendOutcome::Retryable {
                    message,
                    retry_after,
                },
                WriteOutcome::Permanent(message) => SendOutcome::Permanent { message },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_remote_write::{BatchSeries, Sample, SeriesEntry};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers one request with `status` and returns the request's head.
    async fn answer_once(listener: &tokio::net::TcpListener, status: &str) -> String {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-length: 4\r\nretry-after: 2\r\nconnection: close\r\n\r\nnope"
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        let text = String::from_utf8_lossy(&request).to_string();
        text[..text.find("\r\n\r\n").unwrap()].to_owned()
    }

    fn destination(url: &str, protocol: &str, retry_429: bool) -> HttpDestination {
        let yaml = format!(
            "remote_write:\n  - url: {url}\n    protobuf_message: {protocol}\n    headers:\n      X-Scope-OrgID: tenant-1\n    \
             basic_auth:\n      username: u\n      password: p\n    queue_config:\n      retry_on_http_429: {retry_429}\n"
        );
        let config = ember_config::parse(&yaml, Path::new("test.yml")).unwrap();
        let entry = &config.remote_write[0];
        let protocol = match entry.protobuf_message {
            RemoteWriteMessage::V1 => Protocol::V1,
            RemoteWriteMessage::V2 => Protocol::V2,
        };
        HttpDestination::new(url, entry, protocol).unwrap()
    }

    fn batch(protocol: Protocol) -> Batch {
        let series = Arc::new(SeriesEntry::new(
            ember_model::Labels::new([("__name__", "up")]).unwrap(),
            None,
        ));
        Batch::new(
            protocol,
            vec![BatchSeries {
                series,
                samples: vec![Sample { t: 1, v: 1.0 }],
            }],
            Vec::new(),
        )
    }

    #[tokio::test]
    async fn statuses_map_to_outcomes_and_requests_carry_protocol_headers_and_auth() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let cases = [
            ("prometheus.WriteRequest", false, "204 No Content", "sent"),
            (
                "prometheus.WriteRequest",
                false,
                "500 Internal Server Error",
                "retry",
            ),
            ("prometheus.WriteRequest", false, "400 Bad Request", "drop"),
            (
                "prometheus.WriteRequest",
                false,
                "429 Too Many Requests",
                "drop",
            ),
            (
                "io.prometheus.write.v2.Request",
                true,
                "429 Too Many Requests",
                "retry",
            ),
        ];
        for (protocol_name, retry_429, status, want) in cases {
            let destination = destination(&url, protocol_name, retry_429);
            let batch = batch(destination.protocol);
            let (head, outcome) =
                tokio::join!(answer_once(&listener, status), destination.send(&batch));
            let got = match &outcome {
                SendOutcome::Sent => "sent",
                SendOutcome::Retryable { .. } => "retry",
                SendOutcome::Permanent { .. } => "drop",
            };
            assert_eq!(got, want, "{protocol_name} {status}: {outcome:?}");
            if let SendOutcome::Retryable { retry_after, .. } = &outcome {
                assert_eq!(*retry_after, Some(Duration::from_secs(2)));
            }
            let head = head.to_ascii_lowercase();
            assert!(head.starts_with("post /api/v1/write "), "{head}");
            assert!(head.contains("content-encoding: snappy"), "{head}");
            assert!(head.contains("x-scope-orgid: tenant-1"), "{head}");
            // base64("u:p")
            assert!(head.contains("authorization: basic dtpw"), "{head}");
            let (content_type, version) = match destination.protocol {
                Protocol::V1 => ("content-type: application/x-protobuf\r", "0.1.0"),
                Protocol::V2 => (
                    "content-type: application/x-protobuf;proto=io.prometheus.write.v2.request",
                    "2.0.0",
                ),
            };
            assert!(head.contains(content_type), "{head}");
            assert!(
                head.contains(&format!("x-prometheus-remote-write-version: {version}")),
                "{head}"
            );
        }
        // A connection refused is retryable.
        drop(listener);
        let outcome = destination(&url, "prometheus.WriteRequest", false)
            .send(&batch(Protocol::V1))
            .await;
        assert!(
            matches!(outcome, SendOutcome::Retryable { .. }),
            "{outcome:?}"
        );
    }
}

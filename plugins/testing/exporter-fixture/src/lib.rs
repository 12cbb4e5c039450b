//! An exporter plugin for the host's tests.
//!
//! `collect` reads the scrape parameter `behaviour`:
//!
//! | behaviour | answer |
//! | --- | --- |
//! | absent | `fixture_collections_total` (calls this instance served), `fixture_target_labels` (labels of the target), `fixture_param` per parameter |
//! | `http-get` | GETs the parameter `url` over `wasi:http` and returns `fixture_http_status` and `fixture_http_body_bytes`; a denied request is the error `denied` |
//! | `panic` | panics (a trap) |
//! | `env` | `fixture_env{name, value}` for every environment variable the plugin sees |
//! | `read-file` | reads `path` from the first preopened directory: `fixture_file_bytes`; `denied` when there is none or it fails |
//! | `write-file` | tries to create `path` there for writing: `fixture_file_written`; `denied` when refused |
//! | `families` | returns `count` gauge families of one sample each |

use std::sync::atomic::{AtomicU64, Ordering};

use ember_plugin_sdk::{
    Config, Exporter, LabelSet, MetricFamily, MetricFamilyBuilder, Param, PluginError,
    export_exporter,
};
use wasip2::filesystem::types::{DescriptorFlags, ErrorCode as FsErrorCode, OpenFlags, PathFlags};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

struct Fixture {
    calls: AtomicU64,
}

impl Exporter for Fixture {
    fn init(_config: &Config) -> Result<Self, PluginError> {
        Ok(Fixture {
            calls: AtomicU64::new(0),
        })
    }

    fn collect(
        &self,
        target: LabelSet,
        params: Vec<Param>,
    ) -> Result<Vec<MetricFamily>, PluginError> {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let param = |name: &str| {
            params
                .iter()
                .find(|param| param.name == name)
                .map(|param| param.value.as_str())
        };
        match param("behaviour") {
            None => {
                let mut per_param = MetricFamilyBuilder::gauge("fixture_param");
                for p in &params {
                    per_param = per_param.sample([("name", &p.name), ("value", &p.value)], 1.0);
                }
                Ok(vec![
                    MetricFamilyBuilder::counter("fixture_collections")
                        .help("Calls this instance served.")
                        .sample([] as [(&str, &str); 0], calls as f64)
                        .build(),
                    MetricFamilyBuilder::gauge("fixture_target_labels")
                        .sample([] as [(&str, &str); 0], target.len() as f64)
                        .build(),
                    per_param.build(),
                ])
            }
            Some("http-get") => {
                let url = param("url")
                    .ok_or_else(|| PluginError::InvalidInput("missing parameter url".into()))?;
                let (status, body) = http_get(url)?;
                Ok(vec![
                    MetricFamilyBuilder::gauge("fixture_http_status")
                        .sample([] as [(&str, &str); 0], f64::from(status))
                        .build(),
                    MetricFamilyBuilder::gauge("fixture_http_body_bytes")
                        .sample([] as [(&str, &str); 0], body.len() as f64)
                        .build(),
                ])
            }
            Some("panic") => panic!("the test asked this plugin to panic"),
            Some("env") => {
                let mut family = MetricFamilyBuilder::gauge("fixture_env");
                for (name, value) in wasip2::cli::environment::get_environment() {
                    family = family.sample([("name", name), ("value", value)], 1.0);
                }
                Ok(vec![family.build()])
            }
            Some(action @ ("read-file" | "write-file")) => {
                let path = param("path")
                    .ok_or_else(|| PluginError::InvalidInput("missing parameter path".into()))?;
                let (directory, _guest_path) = wasip2::filesystem::preopens::get_directories()
                    .into_iter()
                    .next()
                    .ok_or_else(|| PluginError::Denied("no directory is available".into()))?;
                let denied = |code: FsErrorCode| PluginError::Denied(format!("{path}: {code:?}"));
                if action == "read-file" {
                    let file = directory
                        .open_at(
                            PathFlags::empty(),
                            path,
                            OpenFlags::empty(),
                            DescriptorFlags::READ,
                        )
                        .map_err(denied)?;
                    let mut bytes = 0usize;
                    loop {
                        let (chunk, end) = file.read(64 * 1024, bytes as u64).map_err(denied)?;
                        bytes += chunk.len();
                        if end || chunk.is_empty() {
                            break;
                        }
                    }
                    Ok(vec![
                        MetricFamilyBuilder::gauge("fixture_file_bytes")
                            .sample([] as [(&str, &str); 0], bytes as f64)
                            .build(),
                    ])
                } else {
                    let file = directory
                        .open_at(
                            PathFlags::empty(),
                            path,
                            OpenFlags::CREATE,
                            DescriptorFlags::WRITE,
                        )
                        .map_err(denied)?;
                    file.write(b"written by a plugin", 0).map_err(denied)?;
                    Ok(vec![
                        MetricFamilyBuilder::gauge("fixture_file_written")
                            .sample([] as [(&str, &str); 0], 1.0)
                            .build(),
                    ])
                }
            }
            Some("families") => {
                let count: usize = param("count").and_then(|c| c.parse().ok()).unwrap_or(1000);
                Ok((0..count)
                    .map(|i| {
                        MetricFamilyBuilder::gauge(format!("fixture_family_{i}"))
                            .sample([("i", i.to_string())], i as f64)
                            .build()
                    })
                    .collect())
            }
            Some(other) => Err(PluginError::InvalidInput(format!(
                "unknown behaviour {other:?}"
            ))),
        }
    }
}

/// GETs `url` (`http://authority/path`) and returns the status and body.
fn http_get(url: &str) -> Result<(u16, Vec<u8>), PluginError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| PluginError::InvalidInput(format!("not a URL: {url:?}")))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let path = if path.is_empty() { "/" } else { path };
    let set = request
        .set_method(&Method::Get)
        .and(request.set_scheme(Some(&scheme)))
        .and(request.set_authority(Some(authority)))
        .and(request.set_path_with_query(Some(path)));
    set.map_err(|()| PluginError::InvalidInput(format!("bad URL {url:?}")))?;

    let future = outgoing_handler::handle(request, None).map_err(http_error)?;
    let response = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| PluginError::Internal("response taken twice".into()))?
        .map_err(http_error)?;
    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| PluginError::Internal("response body taken twice".into()))?;
    let stream = body
        .stream()
        .map_err(|()| PluginError::Internal("body stream taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(PluginError::Unavailable(error.to_debug_string()));
            }
        }
    }
    // Children before parents, as wasi:http requires.
    drop(stream);
    drop(body);
    drop(response);
    Ok((status, bytes))
}

fn http_error(code: ErrorCode) -> PluginError {
    match code {
        ErrorCode::HttpRequestDenied => PluginError::Denied("outgoing request denied".into()),
        other => PluginError::Unavailable(format!("{other:?}")),
    }
}

export_exporter!(Fixture);

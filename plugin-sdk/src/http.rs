//! A small, blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! Plugins reach the network only through the host, which checks every
//! request against the plugin's `allowed_hosts` before it leaves. This module
//! hides the resource juggling `wasi:http` asks for (fields, bodies, streams,
//! futures, and dropping children before parents) behind one builder:
//!
//! ```no_run
//! use ember_plugin_sdk::http::{self, Method};
//! use std::time::Duration;
//!
//! # fn example() -> Result<(), ember_plugin_sdk::http::HttpError> {
//! let inventory = http::get("http://inventory.internal:8080/hosts.json")?
//!     .error_for_status()?
//!     .text()?;
//!
//! let written = http::Request::new(Method::Post, "http://127.0.0.1:8086/write?db=ember")
//!     .header("content-type", "text/plain; charset=utf-8")
//!     .body("cpu value=1 1700000000000000000\n")
//!     .timeout(Duration::from_secs(5))
//!     .send()?;
//! assert_eq!(written.status, 204);
//! # let _ = inventory;
//! # Ok(())
//! # }
//! ```
//!
//! Errors convert into [`PluginError`](crate::PluginError) with `?`: a request
//! the host refused becomes `denied` (a configuration problem), a malformed
//! URL `invalid-input`, anything on the wire `unavailable`.
//!
//! Calls block the plugin until the answer is in, which is what plugin calls
//! are for; the host bounds the wait with the plugin's call deadline.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingResponse, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

use crate::PluginError;

/// Largest chunk `blocking-write-and-flush` accepts in one call, from the
/// `wasi:io/streams` contract.
const WRITE_CHUNK: usize = 4096;

/// How much of a response body is read per call into the host.
const READ_CHUNK: u64 = 64 * 1024;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// Any other method, spelled as it goes on the wire.
    Other(String),
}

impl Method {
    fn to_wasi(&self) -> WasiMethod {
        match self {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
            Method::Other(name) => WasiMethod::Other(name.clone()),
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` with a host.
    InvalidUrl(String),
    /// A header name or value was refused (invalid syntax or forbidden).
    InvalidHeader(String),
    /// The host refused the destination: it is not in the plugin's
    /// `allowed_hosts`.
    Denied(String),
    /// The request timed out (connect, first byte or between bytes).
    Timeout(String),
    /// Any other failure on the way: DNS, connection refused, TLS, a
    /// truncated body.
    Transport(String),
    /// The server answered with a status that is not 2xx (from
    /// [`Response::error_for_status`]).
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body, for the operator.
        body: String,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::InvalidHeader(m) => write!(f, "invalid header: {m}"),
            HttpError::Denied(m) => write!(f, "request denied by the host: {m}"),
            HttpError::Timeout(m) => write!(f, "request timed out: {m}"),
            HttpError::Transport(m) => write!(f, "request failed: {m}"),
            HttpError::Status { status, body } => write!(f, "HTTP status {status}: {body}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for PluginError {
    fn from(error: HttpError) -> PluginError {
        match error {
            HttpError::Denied(_) => PluginError::Denied(error.to_string()),
            HttpError::InvalidUrl(_) | HttpError::InvalidHeader(_) => {
                PluginError::InvalidInput(error.to_string())
            }
            HttpError::Timeout(_) | HttpError::Transport(_) | HttpError::Status { .. } => {
                PluginError::Unavailable(error.to_string())
            }
        }
    }
}

/// A response with its whole body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case, as `wasi:http` gives them) and values, in
    /// the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (compared case-insensitively) as
    /// text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response itself if the status is 2xx, else
    /// [`HttpError::Status`] with the first 200 bytes of the body.
    pub fn error_for_status(self) -> Result<Response, HttpError> {
        if self.is_success() {
            return Ok(self);
        }
        let end = self.body.len().min(200);
        Err(HttpError::Status {
            status: self.status,
            body: String::from_utf8_lossy(&self.body[..end]).into_owned(),
        })
    }

    /// The body as UTF-8 text.
    pub fn text(self) -> Result<String, HttpError> {
        String::from_utf8(self.body)
            .map_err(|error| HttpError::Transport(format!("body is not UTF-8: {error}")))
    }
}

/// A request to build and [`send`](Request::send).
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

/// Sends a `GET` to `url` with no extra headers.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new(Method::Get, url).send()
}

/// Sends a `POST` of `body` to `url` with the given `content-type`.
pub fn post(
    url: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Result<Response, HttpError> {
    Request::new(Method::Post, url)
        .header("content-type", content_type)
        .body(body)
        .send()
}

impl Request {
    /// Starts a request. `url` is `http://` or `https://`, a host with an
    /// optional port, and an optional path and query.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// Adds a header; names may repeat.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Bounds the connection, the wait for the first byte and each wait
    /// between bytes (the host may apply a shorter bound of its own; the
    /// plugin's call deadline always applies).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = Url::parse(&self.url)?;
        let fields = Fields::new();
        for (name, value) in &self.headers {
            fields
                .append(name, value)
                .map_err(|error| HttpError::InvalidHeader(format!("{name}: {error:?}")))?;
        }
        let request = OutgoingRequest::new(fields);
        let scheme = if url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_method(&self.method.to_wasi())
            .and(request.set_scheme(Some(&scheme)))
            .and(request.set_authority(Some(url.authority)))
            .and(request.set_path_with_query(Some(&url.path_and_query)))
            .map_err(|()| HttpError::InvalidUrl(self.url.clone()))?;
        let options = self.timeout.map(|timeout| {
            let options = RequestOptions::new();
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            // A host that does not support a timeout refuses to set it;
            // the call deadline still bounds the request then.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });
        let body = request
            .body()
            .map_err(|()| HttpError::Transport("request body taken twice".to_owned()))?;
        // The request goes out first and the body is streamed after it, so
        // a body larger than the host's pipe buffer cannot stall the guest.
        let future = outgoing_handler::handle(request, options).map_err(wire_error)?;
        write_body(body, &self.body)?;
        let response = loop {
            match future.get() {
                Some(result) => break result,
                None => future.subscribe().block(),
            }
        };
        let response = response
            .map_err(|()| HttpError::Transport("response taken twice".to_owned()))?
            .map_err(wire_error)?;
        read_response(response)
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream = body
        .write()
        .map_err(|()| HttpError::Transport("request body stream taken twice".to_owned()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(stream_error)?;
    }
    // The stream is a child of the body and must go before `finish`.
    drop(stream);
    OutgoingBody::finish(body, None).map_err(wire_error)
}

fn read_response(response: IncomingResponse) -> Result<Response, HttpError> {
    let status = response.status();
    let headers = {
        let fields = response.headers();
        let entries = fields.entries();
        drop(fields);
        entries
    };
    let body = response
        .consume()
        .map_err(|()| HttpError::Transport("response body taken twice".to_owned()))?;
    let stream = body
        .stream()
        .map_err(|()| HttpError::Transport("response body stream taken twice".to_owned()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(error) => return Err(stream_error(error)),
        }
    }
    // Children before parents, as wasi:http requires.
    drop(stream);
    drop(body);
    drop(response);
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

fn stream_error(error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => HttpError::Transport("stream closed early".to_owned()),
        StreamError::LastOperationFailed(error) => HttpError::Transport(error.to_debug_string()),
    }
}

fn wire_error(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => {
            HttpError::Denied("the destination is not in allowed_hosts".to_owned())
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => HttpError::Timeout(format!("{code:?}")),
        other => HttpError::Transport(format!("{other:?}")),
    }
}

/// The parts of an `http(s)://authority/path?query` URL that `wasi:http`
/// wants.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_and_query: Cow<'a, str>,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Url<'a>, HttpError> {
        let invalid = || HttpError::InvalidUrl(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(invalid());
        };
        // A fragment never goes on the wire.
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(split);
        if authority.is_empty() || authority.contains(['@', ' ']) {
            return Err(invalid());
        }
        // The request target needs a path: `http://h?q=1` asks for `/?q=1`.
        let path_and_query = if path_and_query.starts_with('/') {
            Cow::Borrowed(path_and_query)
        } else {
            Cow::Owned(format!("/{path_and_query}"))
        };
        Ok(Url {
            https,
            authority,
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let url = Url::parse("http://127.0.0.1:8086/write?db=x#frag").unwrap();
        assert_eq!(
            url,
            Url {
                https: false,
                authority: "127.0.0.1:8086",
                path_and_query: "/write?db=x".into()
            }
        );
        let url = Url::parse("HTTPS://example.com").unwrap();
        assert!(url.https);
        assert_eq!(url.path_and_query, "/");
        assert_eq!(Url::parse("http://h?a=b").unwrap().path_and_query, "/?a=b");
        assert_eq!(Url::parse("http://[::1]:9/x").unwrap().authority, "[::1]:9");
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["ftp://h/", "h:80/x", "http:///x", "http://user@h/", ""] {
            assert!(
                matches!(Url::parse(url), Err(HttpError::InvalidUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn errors_map_to_plugin_errors() {
        assert!(matches!(
            PluginError::from(HttpError::Denied("x".into())),
            PluginError::Denied(_)
        ));
        assert!(matches!(
            PluginError::from(HttpError::InvalidUrl("x".into())),
            PluginError::InvalidInput(_)
        ));
        assert!(matches!(
            PluginError::from(HttpError::Status {
                status: 503,
                body: String::new()
            }),
            PluginError::Unavailable(_)
        ));
    }

    #[test]
    fn error_for_status_keeps_successes_and_reports_the_rest() {
        let ok = Response {
            status: 204,
            headers: vec![("Content-Type".into(), b"text/plain".to_vec())],
            body: Vec::new(),
        };
        assert_eq!(ok.header("content-type"), Some("text/plain"));
        assert!(ok.error_for_status().is_ok());
        let bad = Response {
            status: 404,
            headers: Vec::new(),
            body: b"not found".to_vec(),
        };
        assert_eq!(
            bad.error_for_status(),
            Err(HttpError::Status {
                status: 404,
                body: "not found".into()
            })
        );
    }
}

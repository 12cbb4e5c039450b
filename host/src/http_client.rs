//! HTTP clients built from a configuration's `http_config` settings.
//!
//! Scrapes, HTTP service discovery, remote write and Alertmanager
//! notifications all talk HTTP with the same knobs: basic auth or an
//! `Authorization` header, extra headers, TLS (CA, client certificate, server
//! name, `insecure_skip_verify`, version bounds), proxies, redirects and
//! HTTP/2. [`HttpClient`] turns an [`HttpClientConfig`] into a ready client
//! once, so that per-request work is only what must be fresh: secrets given as
//! files are read again on every request, as Prometheus does, so rotated
//! credentials take effect without a reload.
//!
//! ```no_run
//! # fn demo(config: &ember_config::HttpClientConfig) -> Result<(), ember_host::http_client::HttpClientError> {
//! let client = ember_host::http_client::HttpClient::new(config, "scrape job node")?;
//! let request = client.get("http://127.0.0.1:9100/metrics")?;
//! # Ok(()) }
//! ```

use std::sync::{Arc, OnceLock};

use ember_config::{
    HttpClientConfig, HttpHeader, SecretSource, TlsConfig, TlsVersion, ValueSource,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why a client could not be built, or a request could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("{what}: cannot read {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: no PEM data found")]
    NoPem { what: &'static str },
    #[error("{what}: invalid PEM: {message}")]
    BadPem { what: &'static str, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("invalid TLS server_name {0:?}")]
    ServerName(String),
    #[error("invalid header {name:?}: {message}")]
    Header { name: String, message: String },
    #[error("proxy: {0}")]
    Proxy(reqwest::Error),
    #[error("building the HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("{0} is not supported by Ember yet")]
    Unsupported(&'static str),
}

/// A configured HTTP client. Cheap to clone: the connection pool is shared.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    auth: Arc<Auth>,
    headers: Arc<Vec<(HeaderName, HttpHeader)>>,
}

#[derive(Debug)]
enum Auth {
    None,
    Basic {
        username: Option<SecretSource>,
        password: Option<SecretSource>,
    },
    Authorization {
        kind: String,
        credentials: Option<SecretSource>,
    },
}

impl HttpClient {
    /// Builds a client; `name` says whose client it is in error messages.
    pub fn new(config: &HttpClientConfig, name: &str) -> Result<Self, HttpClientError> {
        if config.oauth2.is_some() {
            return Err(HttpClientError::Unsupported("oauth2"));
        }
        let tls = tls_client_config(&config.tls, config.enable_http2)?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(concat!("Ember/", env!("CARGO_PKG_VERSION")))
            .redirect(if config.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            // Connection reuse matters for scrapes every few seconds; idle
            // connections beyond a scrape interval or two are just held sockets.
            .pool_idle_timeout(std::time::Duration::from_secs(90));
        if !config.enable_http2 {
            builder = builder.http1_only();
        }
        builder = match (&config.proxy.url, config.proxy.from_environment) {
            (Some(url), _) => {
                let mut proxy =
                    reqwest::Proxy::all(url.as_str()).map_err(HttpClientError::Proxy)?;
                if let Some(no_proxy) = &config.proxy.no_proxy {
                    proxy = proxy.no_proxy(reqwest::NoProxy::from_string(no_proxy));
                }
                builder.proxy(proxy)
            }
            // reqwest reads HTTP_PROXY and friends by default; Prometheus
            // only does when asked to.
            (None, true) => builder,
            (None, false) => builder.no_proxy(),
        };
        let client = builder.build().map_err(HttpClientError::Build)?;

        let auth = match (&config.basic_auth, &config.authorization) {
            (Some(basic), _) => Auth::Basic {
                username: basic.username.clone(),
                password: basic.password.clone(),
            },
            (None, Some(authorization)) => Auth::Authorization {
                kind: authorization.kind.clone(),
                credentials: authorization.credentials.clone(),
            },
            (None, None) => Auth::None,
        };
        let mut headers = Vec::with_capacity(config.http_headers.len());
        for (name, header) in &config.http_headers {
            let parsed =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| HttpClientError::Header {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
            headers.push((parsed, header.clone()));
        }
        tracing::debug!(
            client = name,
            tls_ca = config.tls.ca.is_some(),
            "Built HTTP client"
        );
        Ok(Self {
            client,
            auth: Arc::new(auth),
            headers: Arc::new(headers),
        })
    }

    /// A GET request with authentication and configured headers applied.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, HttpClientError> {
        self.request(reqwest::Method::GET, url)
    }

    /// A POST request with authentication and configured headers applied.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, HttpClientError> {
        self.request(reqwest::Method::POST, url)
    }

    /// A request of any method with authentication and headers applied.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, HttpClientError> {
        let mut request = self.client.request(method, url);
        match &*self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let username = username
                    .as_ref()
                    .map(|s| read_secret(s, "basic_auth.username"))
                    .transpose()?;
                let password = password
                    .as_ref()
                    .map(|s| read_secret(s, "basic_auth.password"))
                    .transpose()?;
                request = request.basic_auth(username.unwrap_or_default(), password);
            }
            Auth::Authorization { kind, credentials } => {
                let credentials = credentials
                    .as_ref()
                    .map(|s| read_secret(s, "authorization.credentials"))
                    .transpose()?
                    .unwrap_or_default();
                let value =
                    HeaderValue::from_str(&format!("{kind} {credentials}")).map_err(|e| {
                        HttpClientError::Header {
                            name: "Authorization".into(),
                            message: e.to_string(),
                        }
                    })?;
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        if !self.headers.is_empty() {
            let mut map = HeaderMap::new();
            for (name, header) in self.headers.iter() {
                for value in header_values(name, header)? {
                    map.append(name.clone(), value);
                }
            }
            request = request.headers(map);
        }
        Ok(request)
    }
}

fn header_values(
    name: &HeaderName,
    header: &HttpHeader,
) -> Result<Vec<HeaderValue>, HttpClientError> {
    let invalid = |e: reqwest::header::InvalidHeaderValue| HttpClientError::Header {
        name: name.to_string(),
        message: e.to_string(),
    };
    let mut values = Vec::new();
    for value in &header.values {
        values.push(HeaderValue::from_str(value).map_err(invalid)?);
    }
    for secret in &header.secrets {
        let mut value = HeaderValue::from_str(secret.expose()).map_err(invalid)?;
        value.set_sensitive(true);
        values.push(value);
    }
    for path in &header.files {
        let text = std::fs::read_to_string(path).map_err(|source| HttpClientError::ReadFile {
            what: "http_headers file",
            path: path.display().to_string(),
            source,
        })?;
        let mut value = HeaderValue::from_str(text.trim()).map_err(invalid)?;
        value.set_sensitive(true);
        values.push(value);
    }
    Ok(values)
}

fn read_secret(source: &SecretSource, what: &'static str) -> Result<String, HttpClientError> {
    match source {
        SecretSource::Inline(secret) => Ok(secret.expose().to_owned()),
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .map_err(|source| HttpClientError::ReadFile {
                what,
                path: path.display().to_string(),
                source,
            }),
    }
}

fn read_value(source: &ValueSource, what: &'static str) -> Result<Vec<u8>, HttpClientError> {
    match source {
        ValueSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        ValueSource::File(path) => {
            std::fs::read(path).map_err(|source| HttpClientError::ReadFile {
                what,
                path: path.display().to_string(),
                source,
            })
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trusted roots, loaded once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "Could not load a system CA certificate");
            }
            let (added, ignored) = store.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, ignored, "Loaded system CA certificates");
            Arc::new(store)
        })
        .clone()
}

/// Builds the rustls configuration for `tls_config`.
pub(crate) fn tls_client_config(
    tls: &TlsConfig,
    http2: bool,
) -> Result<rustls::ClientConfig, HttpClientError> {
    // rustls implements TLS 1.2 and 1.3 only; a minimum of 1.0 or 1.1 can
    // therefore only mean 1.2 here.
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| *v >= min.max(TlsVersion::Tls12) && *v <= max)
    .map(|(_, v)| v)
    .collect();
    if versions.is_empty() {
        return Err(HttpClientError::Unsupported("a max_version below TLS12"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)?;

    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(provider()))
    } else {
        let roots = match &tls.ca {
            Some(ca) => {
                let pem = read_value(ca, "tls_config.ca")?;
                let mut store = RootCertStore::empty();
                for cert in parse_certs(&pem, "tls_config.ca")? {
                    store.add(cert)?;
                }
                Arc::new(store)
            }
            None => system_roots(),
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider()).build()?;
        match &tls.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|_| HttpClientError::ServerName(name.clone()))?;
                Arc::new(ExpectServerName {
                    inner: webpki,
                    name,
                })
            }
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let certs = parse_certs(&read_value(cert, "tls_config.cert")?, "tls_config.cert")?;
            let key_pem = match key {
                SecretSource::Inline(secret) => secret.expose().as_bytes().to_vec(),
                SecretSource::File(path) => {
                    std::fs::read(path).map_err(|source| HttpClientError::ReadFile {
                        what: "tls_config.key_file",
                        path: path.display().to_string(),
                        source,
                    })?
                }
            };
            let key =
                PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| HttpClientError::BadPem {
                    what: "tls_config.key",
                    message: e.to_string(),
                })?;
            builder.with_client_auth_cert(certs, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

fn parse_certs(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, HttpClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HttpClientError::BadPem {
            what,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(HttpClientError::NoPem { what });
    }
    Ok(certs)
}

/// Verifies the server's certificate against `server_name` from the
/// configuration instead of the host in the URL, which is what Prometheus's
/// `tls_config.server_name` means when targets are addressed by IP.
#[derive(Debug)]
struct ExpectServerName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify: true`: accept any certificate, but still check
/// that the handshake signatures are made with the certificate's key, so
/// the connection is at least encrypted to whoever holds that key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;

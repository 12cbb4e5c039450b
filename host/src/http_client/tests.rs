//! The client against real local servers: plain HTTP for authentication and
//! headers, and a rustls server for CA, server name, insecure mode and
//! client certificates. Configurations come from YAML, the way users write
//! them.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// The `http_client` of the first scrape job of `yaml` (written under `dir`
/// so relative `*_file` paths resolve there).
fn client_config(dir: &Path, job_settings: &str) -> HttpClientConfig {
    let yaml = format!("scrape_configs:\n  - job_name: test\n{job_settings}");
    let path = dir.join("ember.yml");
    std::fs::write(&path, &yaml).unwrap();
    let config = ember_config::load_file(&path).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    config.scrape_configs[0].http_client.clone()
}

/// Serves one HTTP/1.1 exchange per connection, answering with the request
/// head so tests can inspect the headers that arrived.
async fn echo_head_server(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        echo_head(stream).await;
                    }
                }
                None => echo_head(tcp).await,
            }
        });
    }
}

async fn echo_head<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        head.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&head).await;
    let _ = stream.shutdown().await;
}

async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(echo_head_server(listener, tls));
    port
}

async fn fetch(client: &HttpClient, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    response.text().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn basic_auth_authorization_and_headers_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let port = start(None).await;
    let url = format!("http://127.0.0.1:{port}/metrics");

    let basic = client_config(
        dir.path(),
        "    basic_auth:\n      username: alice\n      password: s3cret\n",
    );
    let head = fetch(&HttpClient::new(&basic, "t").unwrap(), &url)
        .await
        .unwrap();
    // base64("alice:s3cret")
    assert!(
        head.contains("authorization: Basic YWxpY2U6czNjcmV0"),
        "{head}"
    );

    let headers = client_config(
        dir.path(),
        "    authorization:\n      credentials: tok\n    http_headers:\n      X-Tenant:\n        values: [a, b]\n",
    );
    let head = fetch(&HttpClient::new(&headers, "t").unwrap(), &url)
        .await
        .unwrap();
    assert!(head.contains("authorization: Bearer tok"), "{head}");
    assert!(
        head.contains("x-tenant: a") && head.contains("x-tenant: b"),
        "{head}"
    );
    assert!(head.contains("user-agent: Ember/"), "{head}");
}

#[tokio::test]
async fn credentials_files_are_read_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = start(None).await;
    let url = format!("http://127.0.0.1:{port}/");
    std::fs::write(dir.path().join("token"), "first\n").unwrap();
    let config = client_config(
        dir.path(),
        "    authorization:\n      credentials_file: token\n",
    );
    let client = HttpClient::new(&config, "t").unwrap();
    assert!(
        fetch(&client, &url)
            .await
            .unwrap()
            .contains("authorization: Bearer first")
    );
    std::fs::write(dir.path().join("token"), "second\n").unwrap();
    assert!(
        fetch(&client, &url)
            .await
            .unwrap()
            .contains("authorization: Bearer second")
    );

    std::fs::remove_file(dir.path().join("token")).unwrap();
    let error = client.get(&url).unwrap_err().to_string();
    assert!(
        error.contains("authorization.credentials") && error.contains("token"),
        "{error}"
    );
}

/// A CA, and a server certificate for `ember.test` signed by it.
struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki(require_client_cert: bool) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["ember.test".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();

    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let server = builder
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

#[tokio::test]
async fn tls_verifies_against_the_configured_ca_and_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(false);
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    let port = start(Some(tokio_rustls::TlsAcceptor::from(pki.server.clone()))).await;
    // The certificate names ember.test, but the target is addressed by IP.
    let url = format!("https://127.0.0.1:{port}/metrics");

    let with_name = client_config(
        dir.path(),
        "    scheme: https\n    tls_config:\n      ca_file: ca.pem\n      server_name: ember.test\n",
    );
    fetch(&HttpClient::new(&with_name, "t").unwrap(), &url)
        .await
        .expect("CA + server_name verifies");

    let without_name = client_config(
        dir.path(),
        "    scheme: https\n    tls_config:\n      ca_file: ca.pem\n",
    );
    let error = fetch(&HttpClient::new(&without_name, "t").unwrap(), &url)
        .await
        .unwrap_err();
    assert!(
        error.contains("NotValidForName") || error.contains("certificate"),
        "{error}"
    );

    let system_roots = client_config(
        dir.path(),
        "    scheme: https\n    tls_config:\n      server_name: ember.test\n",
    );
    let error = fetch(&HttpClient::new(&system_roots, "t").unwrap(), &url)
        .await
        .unwrap_err();
    assert!(
        error.contains("UnknownIssuer") || error.contains("certificate"),
        "{error}"
    );

    let insecure = client_config(
        dir.path(),
        "    scheme: https\n    tls_config:\n      insecure_skip_verify: true\n",
    );
    fetch(&HttpClient::new(&insecure, "t").unwrap(), &url)
        .await
        .expect("insecure_skip_verify accepts");
}

#[tokio::test]
async fn tls_client_certificates_are_presented() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(true);
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(dir.path().join("client.pem"), &pki.client_cert_pem).unwrap();
    std::fs::write(dir.path().join("client.key"), &pki.client_key_pem).unwrap();
    let port = start(Some(tokio_rustls::TlsAcceptor::from(pki.server.clone()))).await;
    let url = format!("https://127.0.0.1:{port}/");

    let with_cert = client_config(
        dir.path(),
        "    scheme: https\n    tls_config:\n      ca_file: ca.pem\n      server_name: ember.test\n      cert_file: client.pem\n      key_file: client.key\n",
    );
    fetch(&HttpClient::new(&with_cert, "t").unwrap(), &url)
        .await
        .expect("client certificate accepted");

    let without_cert = client_config(
        dir.path(),
        "    scheme: https\n    tls_config:\n      ca_file: ca.pem\n      server_name: ember.test\n",
    );
    assert!(
        fetch(&HttpClient::new(&without_cert, "t").unwrap(), &url)
            .await
            .is_err()
    );
}

#[test]
fn bad_pem_is_reported_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    let config = client_config(dir.path(), "    tls_config:\n      ca_file: ca.pem\n");
    let error = HttpClient::new(&config, "t").unwrap_err().to_string();
    assert!(error.contains("tls_config.ca"), "{error}");
}

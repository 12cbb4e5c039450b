//! The `<http_config>` fields: authentication, TLS, proxies and headers.

use super::*;

impl Validator<'_> {
    pub(super) fn http_client(
        &self,
        path: &str,
        raw: RawHttpClientConfig,
        enable_http2_default: bool,
    ) -> Result<HttpClientConfig> {
        let field = |name: &str| child_key(path, name);
        let has_bearer = raw.bearer_token.as_deref().is_some_and(|t| !t.is_empty())
            || raw
                .bearer_token_file
                .as_deref()
                .is_some_and(|t| !t.is_empty());
        if raw.bearer_token.is_some() && raw.bearer_token_file.is_some() {
            return Err(self.error(
                &field("bearer_token_file"),
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if raw.basic_auth.is_some() && has_bearer {
            return Err(self.error(
                &field("basic_auth"),
                "at most one of basic_auth, bearer_token & bearer_token_file must be configured",
            ));
        }

        let basic_auth = match &raw.basic_auth {
            None => None,
            Some(basic) => {
                let auth_path = field("basic_auth");
                Some(BasicAuth {
                    username: self.secret_source(
                        &auth_path,
                        "username",
                        basic.username.as_deref(),
                        basic.username_file.as_deref(),
                    )?,
                    password: self.secret_source(
                        &auth_path,
                        "password",
                        basic.password.as_deref(),
                        basic.password_file.as_deref(),
                    )?,
                })
            }
        };

        let authorization = match &raw.authorization {
            Some(authorization) => {
                let auth_path = field("authorization");
                if has_bearer {
                    return Err(self.error(
                        &auth_path,
                        "authorization is not compatible with bearer_token & bearer_token_file",
                    ));
                }
                if raw.basic_auth.is_some() || raw.oauth2.is_some() {
                    return Err(self.error(
                        &auth_path,
                        "at most one of basic_auth, oauth2 & authorization must be configured",
                    ));
                }
                let kind = authorization
                    .kind
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .unwrap_or("Bearer");
                if kind.eq_ignore_ascii_case("basic") {
                    return Err(self.error(
                        &child_key(&auth_path, "type"),
                        r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                    ));
                }
                Some(Authorization {
                    kind: kind.to_owned(),
                    credentials: self.secret_source(
                        &auth_path,
                        "credentials",
                        authorization.credentials.as_deref(),
                        authorization.credentials_file.as_deref(),
                    )?,
                })
            }
            // The deprecated bearer token fields become an `authorization` of type Bearer.
            None => match (
                raw.bearer_token.as_deref(),
                raw.bearer_token_file.as_deref(),
            ) {
                (Some(token), _) if !token.is_empty() => Some(Authorization {
                    kind: "Bearer".to_owned(),
                    credentials: Some(SecretSource::Inline(Secret::new(token))),
                }),
                (_, Some(file)) if !file.is_empty() => Some(Authorization {
                    kind: "Bearer".to_owned(),
                    credentials: Some(SecretSource::File(self.file_path(file))),
                }),
                _ => None,
            },
        };

        let oauth2 = match &raw.oauth2 {
            None => None,
            Some(oauth2) => {
                let oauth_path = field("oauth2");
                if raw.basic_auth.is_some() {
                    return Err(self.error(
                        &oauth_path,
                        "at most one of basic_auth, oauth2 & authorization must be configured",
                    ));
                }
                Some(self.oauth2(&oauth_path, oauth2)?)
            }
        };

        let mut http_headers = BTreeMap::new();
        for (name, header) in raw.http_headers.unwrap_or_default() {
            let header_path = child_key(&field("http_headers"), &name);
            if RESERVED_HTTP_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(self.error(
                    &header_path,
                    format!("setting header {name:?} is not allowed"),
                ));
            }
            http_headers.insert(
                name,
                HttpHeader {
                    values: header.values.unwrap_or_default(),
                    secrets: header
                        .secrets
                        .unwrap_or_default()
                        .into_iter()
                        .map(Secret::new)
                        .collect(),
                    files: self.file_list(header.files),
                },
            );
        }

        Ok(HttpClientConfig {
            basic_auth,
            authorization,
            oauth2,
            follow_redirects: raw.follow_redirects.unwrap_or(true),
            enable_http2: raw.enable_http2.unwrap_or(enable_http2_default),
            tls: self.tls(&field("tls_config"), raw.tls_config.as_ref())?,
            proxy: self.proxy(
                path,
                raw.proxy_url.as_deref(),
                raw.no_proxy.as_deref(),
                raw.proxy_from_environment,
                raw.proxy_connect_header,
            )?,
            http_headers,
        })
    }

    /// `<name>` / `<name>_file`, at most one of them.
    pub(super) fn secret_source(
        &self,
        path: &str,
        name: &str,
        inline: Option<&str>,
        file: Option<&str>,
    ) -> Result<Option<SecretSource>> {
        let inline = inline.filter(|value| !value.is_empty());
        let file = file.filter(|value| !value.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(self.error(
                &child_key(path, &format!("{name}_file")),
                format!("at most one of {name} & {name}_file must be configured"),
            )),
            (Some(value), None) => Ok(Some(SecretSource::Inline(Secret::new(value)))),
            (None, Some(file)) => Ok(Some(SecretSource::File(self.file_path(file)))),
            (None, None) => Ok(None),
        }
    }

    pub(super) fn oauth2(&self, path: &str, raw: &RawOAuth2) -> Result<OAuth2> {
        let field = |name: &str| child_key(path, name);
        let client_id = raw.client_id.clone().filter(|id| !id.is_empty());
        let Some(client_id) = client_id else {
            return Err(self.error(&field("client_id"), "oauth2 client_id must be configured"));
        };
        let token_url = match raw.token_url.as_deref() {
            Some(text) if !text.is_empty() => self.http_url(&field("token_url"), text)?,
            _ => return Err(self.error(&field("token_url"), "oauth2 token_url must be configured")),
        };
        Ok(OAuth2 {
            client_id,
            grant_type: raw
                .grant_type
                .clone()
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "client_credentials".to_owned()),
            client_secret: self.secret_source(
                path,
                "client_secret",
                raw.client_secret.as_deref(),
                raw.client_secret_file.as_deref(),
            )?,
            client_certificate_key: self.secret_source(
                path,
                "client_certificate_key",
                raw.client_certificate_key.as_deref(),
                raw.client_certificate_key_file.as_deref(),
            )?,
            client_certificate_key_id: raw.client_certificate_key_id.clone(),
            signature_algorithm: raw
                .signature_algorithm
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "RS256".to_owned()),
            iss: raw.iss.clone(),
            audience: raw.audience.clone(),
            claims: raw.claims.clone().unwrap_or_default(),
            scopes: raw.scopes.clone().unwrap_or_default(),
            token_url,
            endpoint_params: raw.endpoint_params.clone().unwrap_or_default(),
            tls: self.tls(&field("tls_config"), raw.tls_config.as_ref())?,
            proxy: self.proxy(
                path,
                raw.proxy_url.as_deref(),
                raw.no_proxy.as_deref(),
                raw.proxy_from_environment,
                raw.proxy_connect_header.clone(),
            )?,
        })
    }

    pub(super) fn tls(&self, path: &str, raw: Option<&RawTlsConfig>) -> Result<TlsConfig> {
        let Some(raw) = raw else {
            return Ok(TlsConfig::default());
        };
        let field = |name: &str| child_key(path, name);
        let value_source =
            |name: &str, inline: Option<&str>, file: Option<&str>| -> Result<Option<ValueSource>> {
                match (
                    inline.filter(|v| !v.is_empty()),
                    file.filter(|v| !v.is_empty()),
                ) {
                    (Some(_), Some(_)) => Err(self.error(
                        &field(&format!("{name}_file")),
                        format!("at most one of {name} and {name}_file must be configured"),
                    )),
                    (Some(value), None) => Ok(Some(ValueSource::Inline(value.to_owned()))),
                    (None, Some(file)) => Ok(Some(ValueSource::File(self.file_path(file)))),
                    (None, None) => Ok(None),
                }
            };
        let ca = value_source("ca", raw.ca.as_deref(), raw.ca_file.as_deref())?;
        let cert = value_source("cert", raw.cert.as_deref(), raw.cert_file.as_deref())?;
        let key = self.secret_source(path, "key", raw.key.as_deref(), raw.key_file.as_deref())?;
        match (&cert, &key) {
            (Some(_), None) => {
                return Err(self.error(path, "exactly one of key or key_file must be configured when a client certificate is configured"));
            }
            (None, Some(_)) => {
                return Err(self.error(path, "exactly one of cert or cert_file must be configured when a client key is configured"));
            }
            _ => {}
        }
        let version = |name: &str, text: Option<&str>| -> Result<Option<TlsVersion>> {
            text.filter(|t| !t.is_empty())
                .map(|text| {
                    TlsVersion::from_config(text).ok_or_else(|| {
                        self.error(&field(name), format!("unknown TLS version {text:?}, expected one of TLS10, TLS11, TLS12, TLS13"))
                    })
                })
                .transpose()
        };
        let min_version = version("min_version", raw.min_version.as_deref())?;
        let max_version = version("max_version", raw.max_version.as_deref())?;
        if let (Some(min), Some(max)) = (min_version, max_version)
            && max < min
        {
            return Err(self.error(
                &field("max_version"),
                "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified",
            ));
        }
        Ok(TlsConfig {
            ca,
            cert,
            key,
            server_name: raw.server_name.clone().filter(|name| !name.is_empty()),
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
            min_version,
            max_version,
        })
    }

    pub(super) fn proxy(
        &self,
        path: &str,
        url: Option<&str>,
        no_proxy: Option<&str>,
        from_environment: Option<bool>,
        connect_headers: Option<BTreeMap<String, Vec<String>>>,
    ) -> Result<ProxyConfig> {
        let field = |name: &str| child_key(path, name);
        let url = url.filter(|u| !u.is_empty());
        let no_proxy = no_proxy.filter(|n| !n.is_empty());
        let from_environment = from_environment.unwrap_or(false);
        let connect_headers = connect_headers.unwrap_or_default();
        if from_environment && url.is_some() {
            return Err(self.error(
                &field("proxy_url"),
                "if proxy_from_environment is configured, proxy_url must not be configured",
            ));
        }
        if from_environment && no_proxy.is_some() {
            return Err(self.error(
                &field("no_proxy"),
                "if proxy_from_environment is configured, no_proxy must not be configured",
            ));
        }
        if url.is_none() && no_proxy.is_some() {
            return Err(self.error(
                &field("no_proxy"),
                "if no_proxy is configured, proxy_url must also be configured",
            ));
        }
        if !connect_headers.is_empty() && url.is_none() && !from_environment {
            return Err(self.error(
                &field("proxy_connect_header"),
                "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
            ));
        }
        let url = url
            .map(|text| {
                let parsed = Url::parse(text).map_err(|error| {
                    self.error(
                        &field("proxy_url"),
                        format!("invalid proxy URL {text:?}: {error}"),
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https" | "socks5") {
                    return Err(self.error(
                        &field("proxy_url"),
                        format!(
                            "proxy URL scheme must be http, https or socks5, got {:?}",
                            parsed.scheme()
                        ),
                    ));
                }
                Ok(parsed)
            })
            .transpose()?;
        Ok(ProxyConfig {
            url,
            no_proxy: no_proxy.map(str::to_owned),
            from_environment,
            connect_headers: connect_headers
                .into_iter()
                .map(|(name, values)| (name, values.into_iter().map(Secret::new).collect()))
                .collect(),
        })
    }

    /// At most one way to authenticate a request may be configured.
    pub(super) fn single_auth_method(&self, path: &str, methods: &[(&str, bool)]) -> Result<()> {
        let configured: Vec<&str> = methods
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
        if configured.len() > 1 {
            let names: Vec<&str> = methods.iter().map(|(name, _)| *name).collect();
            return Err(self.error(
                &child_key(path, configured[1]),
                format!(
                    "at most one of {} must be configured, found {}",
                    names.join(", "),
                    configured.join(" and ")
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn remote_headers(
        &self,
        path: &str,
        headers: Option<BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, String>> {
        let headers = headers.unwrap_or_default();
        for name in headers.keys() {
            if name.eq_ignore_ascii_case("authorization") {
                return Err(self.error(
                    &child_key(path, name),
                    "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
                ));
            }
            if RESERVED_REMOTE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(self.error(
                    &child_key(path, name),
                    format!("{name} is a reserved header. It must not be changed"),
                ));
            }
        }
        Ok(headers)
    }
}

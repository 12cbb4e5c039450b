//! The one place that decides what a plugin may reach outside its sandbox.
//!
//! Every grant is denied unless the operator names it in the plugin's
//! configuration: outgoing HTTP only to [`HostPattern`]s in `allowed_hosts`,
//! environment variables only by name, and at most one directory, read-only.
//! The store's WASI context is built from [`Capabilities`] and the `wasi:http`
//! hook asks [`Capabilities::check_http`] before any request leaves, so a
//! review of this file is a review of the sandbox's doors.
//!
//! Host patterns:
//!
//! | pattern | matches |
//! | --- | --- |
//! | `api.example.com` | that host, on the scheme's default port (80 for `http`, 443 for `https`) |
//! | `api.example.com:8443` | that host on port 8443 only |
//! | `api.example.com:*` | that host on any port |
//! | `*.example.com` | any subdomain (`a.example.com`, `a.b.example.com`), not `example.com` itself |
//! | `127.0.0.1:9100`, `[::1]:8080` | IP literals, compared as written after normalisation |
//!
//! Host names compare case-insensitively and without a trailing dot. The check
//! is on the name the plugin asked for; resolving it is the operator's DNS.

use std::fmt;
use std::path::PathBuf;

/// What one plugin is allowed to reach. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Hosts the plugin may send `wasi:http` requests to.
    pub allowed_hosts: Vec<HostPattern>,
    /// Names of host environment variables the plugin may read; a named
    /// variable that is unset on the host is simply absent.
    pub env: Vec<String>,
    /// A directory the plugin may read (never write), if any.
    pub read_only_dir: Option<ReadOnlyDir>,
}

/// A host directory mapped read-only into the plugin's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyDir {
    /// The directory on the host.
    pub host_path: PathBuf,
    /// Where the plugin sees it, for example `/data`.
    pub guest_path: String,
}

/// Why a capability was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// An `allowed_hosts` entry does not parse.
    #[error("invalid host pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The plugin asked for an HTTP destination outside `allowed_hosts`.
    #[error("outgoing request to {authority} is not allowed (allowed_hosts: {allowed})")]
    HostDenied {
        /// The authority the plugin asked for, as `host:port`.
        authority: String,
        /// The plugin's allowed hosts, for the log line.
        allowed: String,
    },
    /// The request's URI has no host or an unknown scheme without a port.
    #[error("outgoing request has no usable destination: {0}")]
    BadDestination(String),
}

/// One entry of `allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// The whole (normalised) host.
    Exact(String),
    /// `*.suffix`: stores `.suffix`, which a matching host must end with.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    /// No port written: the scheme's default port only.
    Default,
    /// `:*`.
    Any,
    /// `:N`.
    Exact(u16),
}

impl HostPattern {
    /// Parses a pattern (see the module documentation).
    pub fn parse(pattern: &str) -> Result<HostPattern, CapabilityError> {
        let invalid = |reason| CapabilityError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let trimmed = pattern.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        if trimmed.contains("://") || trimmed.contains('/') {
            return Err(invalid("write a host (and port), not a URL"));
        }
        let (host, port) = split_host_port(trimmed).ok_or_else(|| invalid("bad port"))?;
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(digits) => PortMatch::Exact(digits.parse().map_err(|_| invalid("bad port"))?),
        };
        let host = normalise_host(host);
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(invalid("a wildcard needs a domain after `*.`"));
            }
            HostMatch::Subdomains(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(invalid(
                "`*` is only allowed as the whole first label (`*.example.com`)",
            ));
        } else if host.is_empty() {
            return Err(invalid("no host"));
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern { host, port })
    }

    /// Whether this pattern admits `host` (already normalised) on `port`,
    /// where `default_port` is the port the scheme implies.
    fn admits(&self, host: &str, port: u16, default_port: Option<u16>) -> bool {
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(allowed) => allowed == port,
            PortMatch::Default => default_port == Some(port),
        };
        let host_ok = match &self.host {
            HostMatch::Exact(allowed) => allowed == host,
            HostMatch::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        };
        port_ok && host_ok
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            // An IPv6 literal is bracketed, so that a port stays readable.
            HostMatch::Exact(host) if host.contains(':') => write!(f, "[{host}]")?,
            HostMatch::Exact(host) => f.write_str(host)?,
            HostMatch::Subdomains(suffix) => write!(f, "*{suffix}")?,
        }
        match self.port {
            PortMatch::Default => Ok(()),
            PortMatch::Any => f.write_str(":*"),
            PortMatch::Exact(port) => write!(f, ":{port}"),
        }
    }
}

impl std::str::FromStr for HostPattern {
    type Err = CapabilityError;

    fn from_str(pattern: &str) -> Result<HostPattern, CapabilityError> {
        HostPattern::parse(pattern)
    }
}

/// Splits `host[:port]`, `[v6]` or `[v6]:port`; `None` on a malformed port part.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address without brackets has several colons; the
        // pattern must bracket it to carry a port.
        Some((host, _)) if host.contains(':') => Some((text, None)),
        Some((host, port)) => Some((host, Some(port))),
        None => Some((text, None)),
    }
}

/// Lower-cases a host and drops brackets and a trailing dot, so that
/// `API.Example.com.` and `api.example.com` compare equal.
fn normalise_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

impl Capabilities {
    /// Grants nothing; the same as `Capabilities::default()`.
    pub fn none() -> Capabilities {
        Capabilities::default()
    }

    /// Parses `allowed_hosts` entries as written in the configuration.
    pub fn with_allowed_hosts<S: AsRef<str>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> Result<Capabilities, CapabilityError> {
        for pattern in patterns {
            self.allowed_hosts
                .push(HostPattern::parse(pattern.as_ref())?);
        }
        Ok(self)
    }

    /// Decides whether a request to `scheme://host[:port]` may leave.
    /// `port` is `None` when the URI has none, meaning the scheme's default.
    pub fn check_http(
        &self,
        scheme: &str,
        host: &str,
        port: Option<u16>,
    ) -> Result<(), CapabilityError> {
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        let port = port.or(default_port).ok_or_else(|| {
            CapabilityError::BadDestination(format!("scheme {scheme:?} needs an explicit port"))
        })?;
        let host = normalise_host(host);
        if host.is_empty() {
            return Err(CapabilityError::BadDestination("no host".to_owned()));
        }
        if self
            .allowed_hosts
            .iter()
            .any(|pattern| pattern.admits(&host, port, default_port))
        {
            return Ok(());
        }
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let allowed = if self.allowed_hosts.is_empty() {
            "none".to_owned()
        } else {
            let names: Vec<String> = self.allowed_hosts.iter().map(ToString::to_string).collect();
            names.join(", ")
        };
        Err(CapabilityError::HostDenied { authority, allowed })
    }

    /// The environment the plugin sees: each granted name that `lookup`
    /// (normally `std::env::var`) finds, and nothing else.
    pub fn granted_env(&self, lookup: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|name| lookup(name).map(|value| (name.clone(), value)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(patterns: &[&str]) -> Capabilities {
        Capabilities::none().with_allowed_hosts(patterns).unwrap()
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let none = Capabilities::none();
        let error = none.check_http("http", "example.com", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "outgoing request to example.com:80 is not allowed (allowed_hosts: none)"
        );
        assert!(none.granted_env(|_| Some("x".to_owned())).is_empty());
        assert!(none.read_only_dir.is_none());
    }

    #[test]
    fn exact_host_on_default_port_only() {
        let c = caps(&["api.example.com"]);
        assert!(c.check_http("https", "api.example.com", None).is_ok());
        assert!(c.check_http("https", "api.example.com", Some(443)).is_ok());
        assert!(c.check_http("http", "api.example.com", None).is_ok());
        assert!(
            c.check_http("https", "api.example.com", Some(8443))
                .is_err()
        );
        assert!(c.check_http("https", "example.com", None).is_err());
        assert!(c.check_http("https", "xapi.example.com", None).is_err());
        assert!(
            c.check_http("https", "api.example.com.evil.net", None)
                .is_err()
        );
    }

    #[test]
    fn exact_host_compares_case_insensitively_without_trailing_dot() {
        let c = caps(&["API.Example.com."]);
        assert!(c.check_http("https", "api.example.COM", None).is_ok());
        assert!(c.check_http("https", "api.example.com.", None).is_ok());
    }

    #[test]
    fn explicit_and_any_port() {
        let c = caps(&["metrics.internal:9100", "127.0.0.1:*"]);
        assert!(c.check_http("http", "metrics.internal", Some(9100)).is_ok());
        assert!(c.check_http("http", "metrics.internal", None).is_err());
        assert!(
            c.check_http("http", "metrics.internal", Some(9101))
                .is_err()
        );
        assert!(c.check_http("http", "127.0.0.1", Some(1)).is_ok());
        assert!(c.check_http("http", "127.0.0.1", None).is_ok());
        assert!(c.check_http("http", "127.0.0.2", Some(1)).is_err());
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_the_domain() {
        let c = caps(&["*.example.com"]);
        assert!(c.check_http("https", "a.example.com", None).is_ok());
        assert!(c.check_http("https", "a.b.example.com", None).is_ok());
        assert!(c.check_http("https", "example.com", None).is_err());
        assert!(c.check_http("https", "badexample.com", None).is_err());
        assert!(c.check_http("https", "a.example.com.evil", None).is_err());
        assert!(c.check_http("https", "a.example.com", Some(8080)).is_err());
        let any_port = caps(&["*.example.com:*"]);
        assert!(
            any_port
                .check_http("http", "x.example.com", Some(8080))
                .is_ok()
        );
    }

    #[test]
    fn ipv6_literals_need_brackets_for_a_port() {
        let c = caps(&["[::1]:8080"]);
        assert!(c.check_http("http", "[::1]", Some(8080)).is_ok());
        assert!(c.check_http("http", "::1", Some(8080)).is_ok());
        assert!(c.check_http("http", "[::1]", Some(8081)).is_err());
        let error = caps(&[]).check_http("http", "[::1]", Some(80)).unwrap_err();
        assert!(error.to_string().contains("[::1]:80"), "{error}");
    }

    #[test]
    fn unknown_scheme_without_port_is_a_bad_destination() {
        let c = caps(&["example.com:*"]);
        assert!(matches!(
            c.check_http("gopher", "example.com", None),
            Err(CapabilityError::BadDestination(_))
        ));
        assert!(c.check_http("gopher", "example.com", Some(70)).is_ok());
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        for pattern in [
            "",
            "http://example.com",
            "example.com/path",
            "a.*.com",
            "*.",
            "*",
            "h:x",
        ] {
            assert!(
                matches!(
                    HostPattern::parse(pattern),
                    Err(CapabilityError::InvalidPattern { .. })
                ),
                "{pattern:?} should be rejected"
            );
        }
    }

    #[test]
    fn patterns_display_as_written_after_normalisation() {
        for (written, shown) in [
            ("Example.com", "example.com"),
            ("*.example.com:*", "*.example.com:*"),
            ("h:9100", "h:9100"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            assert_eq!(HostPattern::parse(written).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn only_named_environment_variables_are_granted() {
        let c = Capabilities {
            env: vec!["A".to_owned(), "MISSING".to_owned()],
            ..Capabilities::none()
        };
        let env = c.granted_env(|name| match name {
            "A" => Some("1".to_owned()),
            "B" => Some("2".to_owned()),
            _ => None,
        });
        assert_eq!(env, [("A".to_owned(), "1".to_owned())]);
    }
}

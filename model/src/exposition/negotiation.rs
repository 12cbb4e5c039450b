//! Scrape content negotiation, as Prometheus 3 does it.
//!
//! The scraper offers the formats it accepts in an `Accept` header built by
//! [`accept_header`] from the configured `scrape_protocols`, and reads the
//! answer's `Content-Type` with [`Format::from_content_type`]: a missing,
//! unparsable or unknown media type fails the scrape unless the job set a
//! `fallback_scrape_protocol`. Only the media type decides the parser; its
//! parameters (`version`, `escaping`, ...) do not, exactly as in Prometheus.
//!
//! ```
//! use ember_model::exposition::{Format, ScrapeProtocol, accept_header};
//!
//! let header = accept_header(ScrapeProtocol::DEFAULT);
//! assert!(header.starts_with("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"));
//! assert_eq!(
//!     Format::from_content_type(Some("text/plain; version=0.0.4; charset=utf-8"), None),
//!     Ok(Format::PrometheusText)
//! );
//! assert!(Format::from_content_type(None, None).is_err());
//! assert_eq!(
//!     Format::from_content_type(None, Some(ScrapeProtocol::PrometheusText0_0_4)),
//!     Ok(Format::PrometheusText)
//! );
//! ```

use std::fmt;
use std::str::FromStr;

/// A scrape protocol as named in `scrape_protocols` and
/// `fallback_scrape_protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    /// `PrometheusProto`: delimited protobuf `MetricFamily` messages.
    PrometheusProto,
    /// `OpenMetricsText0.0.1`.
    OpenMetricsText0_0_1,
    /// `OpenMetricsText1.0.0`.
    OpenMetricsText1_0_0,
    /// `PrometheusText0.0.4`.
    PrometheusText0_0_4,
    /// `PrometheusText1.0.0`.
    PrometheusText1_0_0,
}

/// The escaping scheme requested for UTF-8 names (`escaping=` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EscapingScheme {
    /// Names are sent as they are (`allow-utf-8`), quoted where needed.
    #[default]
    AllowUtf8,
    /// Invalid characters become underscores.
    Underscores,
    /// Dots become `_dot_`, underscores are doubled.
    Dots,
    /// `U__` prefix and Unicode code points.
    Values,
}

impl EscapingScheme {
    /// The parameter value, e.g. `allow-utf-8`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowUtf8 => "allow-utf-8",
            Self::Underscores => "underscores",
            Self::Dots => "dots",
            Self::Values => "values",
        }
    }
}

impl ScrapeProtocol {
    /// Every protocol, in the order Prometheus lists them.
    pub const ALL: &'static [Self] = &[
        Self::PrometheusProto,
        Self::PrometheusText0_0_4,
        Self::PrometheusText1_0_0,
        Self::OpenMetricsText0_0_1,
        Self::OpenMetricsText1_0_0,
    ];

    /// Prometheus 3's default `scrape_protocols`.
    pub const DEFAULT: &'static [Self] = &[
        Self::OpenMetricsText1_0_0,
        Self::OpenMetricsText0_0_1,
        Self::PrometheusText1_0_0,
        Self::PrometheusText0_0_4,
    ];

    /// The default when native histograms are enabled: protobuf first.
    pub const DEFAULT_PROTO_FIRST: &'static [Self] = &[
        Self::PrometheusProto,
        Self::OpenMetricsText1_0_0,
        Self::OpenMetricsText0_0_1,
        Self::PrometheusText1_0_0,
        Self::PrometheusText0_0_4,
    ];

    /// The configuration spelling, e.g. `OpenMetricsText1.0.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrometheusProto => "PrometheusProto",
            Self::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            Self::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            Self::PrometheusText0_0_4 => "PrometheusText0.0.4",
            Self::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }

    /// The media type with its parameters, as sent in `Accept`.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            Self::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            Self::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            Self::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            Self::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        }
    }

    /// The parser this protocol needs.
    pub fn format(self) -> Format {
        match self {
            Self::PrometheusProto => Format::Protobuf,
            Self::OpenMetricsText0_0_1 | Self::OpenMetricsText1_0_0 => Format::OpenMetrics,
            Self::PrometheusText0_0_4 | Self::PrometheusText1_0_0 => Format::PrometheusText,
        }
    }

    /// Whether the protocol version carries an `escaping` parameter.
    fn has_escaping(self) -> bool {
        matches!(self, Self::OpenMetricsText1_0_0 | Self::PrometheusText1_0_0)
    }
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scrape protocol name that is not one of [`ScrapeProtocol::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scrape protocol {0:?}, supported: PrometheusProto, OpenMetricsText0.0.1, OpenMetricsText1.0.0, PrometheusText0.0.4, PrometheusText1.0.0"
)]
pub struct UnknownScrapeProtocol(pub String);

impl FromStr for ScrapeProtocol {
    type Err = UnknownScrapeProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownScrapeProtocol(s.to_owned()))
    }
}

/// The `Accept` header for `protocols` in order of preference, with
/// `escaping=allow-utf-8` on the 1.0.0 text formats.
pub fn accept_header(protocols: &[ScrapeProtocol]) -> String {
    accept_header_with_escaping(protocols, EscapingScheme::AllowUtf8)
}

/// The `Accept` header for `protocols` in order of preference.
///
/// Like Prometheus, the first protocol gets `q=0.{N+1}` where `N` is the
/// number of protocols that exist (five), each next one a tenth less, and a
/// final `*/*` the next weight, so any target answers something. (The
/// example in the content negotiation document starts at `q=0.5`; the
/// Prometheus code, which this follows, starts at `q=0.6`.)
pub fn accept_header_with_escaping(
    protocols: &[ScrapeProtocol],
    escaping: EscapingScheme,
) -> String {
    let mut weight = ScrapeProtocol::ALL.len() + 1;
    let mut out = String::with_capacity(64 * (protocols.len() + 1));
    for protocol in protocols {
        out.push_str(protocol.media_type());
        if protocol.has_escaping() {
            out.push_str(";escaping=");
            out.push_str(escaping.as_str());
        }
        out.push_str(";q=0.");
        out.push_str(&weight.to_string());
        out.push(',');
        weight = weight.saturating_sub(1);
    }
    out.push_str("*/*;q=0.");
    out.push_str(&weight.to_string());
    out
}

/// The `Accept-Encoding` header: `gzip` when compression is enabled (the
/// HTTP client then decompresses), `identity` otherwise.
pub fn accept_encoding_header(enable_compression: bool) -> &'static str {
    if enable_compression {
        "gzip"
    } else {
        "identity"
    }
}

/// Which parser a response needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain`: Prometheus text 0.0.4 / 1.0.0.
    PrometheusText,
    /// `application/openmetrics-text`.
    OpenMetrics,
    /// `application/vnd.google.protobuf`: delimited `MetricFamily` messages.
    Protobuf,
}

/// Why a `Content-Type` could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedContentType {
    /// No `Content-Type` header, or an empty one.
    #[error(
        "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target"
    )]
    Missing,
    /// The header is not a valid media type.
    #[error("cannot parse Content-Type {0:?} and no fallback_scrape_protocol for target")]
    Unparsable(String),
    /// A valid media type that no parser handles.
    #[error(
        "received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target"
    )]
    Unsupported(String),
}

/// The outcome of negotiation when a fallback may have been used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The parser to use.
    pub format: Format,
    /// Set when the fallback protocol was used, saying why; Prometheus
    /// logs this as a warning and the scrape goes on.
    pub fallback_reason: Option<UnsupportedContentType>,
}

impl Format {
    /// Picks the parser for a response's `Content-Type`.
    ///
    /// A missing, unparsable or unsupported type is an error unless a
    /// fallback protocol is configured, in which case the fallback's format
    /// is used (see [`Format::negotiate`] to learn that it was).
    pub fn from_content_type(
        content_type: Option<&str>,
        fallback: Option<ScrapeProtocol>,
    ) -> Result<Self, UnsupportedContentType> {
        Self::negotiate(content_type, fallback).map(|n| n.format)
    }

    /// Like [`Format::from_content_type`], also reporting fallback use.
    pub fn negotiate(
        content_type: Option<&str>,
        fallback: Option<ScrapeProtocol>,
    ) -> Result<Negotiated, UnsupportedContentType> {
        let problem = match content_type.map(str::trim).filter(|s| !s.is_empty()) {
            None => UnsupportedContentType::Missing,
            Some(header) => match parse_media_type(header) {
                None => UnsupportedContentType::Unparsable(header.to_owned()),
                Some(media_type) => {
                    let format = match media_type.as_str() {
                        "text/plain" => Some(Self::PrometheusText),
                        "application/openmetrics-text" => Some(Self::OpenMetrics),
                        "application/vnd.google.protobuf" => Some(Self::Protobuf),
                        _ => None,
                    };
                    match format {
                        Some(format) => {
                            return Ok(Negotiated {
                                format,
                                fallback_reason: None,
                            });
                        }
                        None => UnsupportedContentType::Unsupported(header.to_owned()),
                    }
                }
            },
        };
        match fallback {
            Some(protocol) => Ok(Negotiated {
                format: protocol.format(),
                fallback_reason: Some(problem),
            }),
            None => Err(problem),
        }
    }

    /// The `Content-Type` a writer of this format sends.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }
}

fn is_token_char(c: char) -> bool {
    // RFC 7230 tchar.
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses `type/subtype *(; name=value)` like Go's `mime.ParseMediaType`
/// and returns the lowercased `type/subtype`; `None` if malformed.
fn parse_media_type(header: &str) -> Option<String> {
    let mut parts = header.splitn(2, ';');
    let media_type = parts.next()?.trim();
    let (kind, subtype) = media_type.split_once('/')?;
    if kind.is_empty()
        || subtype.is_empty()
        || !kind.chars().all(is_token_char)
        || !subtype.chars().all(is_token_char)
    {
        return None;
    }
    let mut params = parts.next().unwrap_or("");
    loop {
        params = params.trim_start_matches([' ', '\t']);
        if params.is_empty() {
            break;
        }
        let (name, rest) = params.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(is_token_char) {
            return None;
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let after_value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut escaped = false;
            let end = quoted.char_indices().find_map(|(i, c)| {
                if escaped {
                    escaped = false;
                    None
                } else if c == '\\' {
                    escaped = true;
                    None
                } else if c == '"' {
                    Some(i)
                } else {
                    None
                }
            })?;
            &quoted[end + 1..]
        } else {
            let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            &rest[end..]
        };
        let after_value = after_value.trim_start_matches([' ', '\t']);
        params = match after_value.strip_prefix(';') {
            Some(next) => next,
            None if after_value.is_empty() => "",
            None => return None,
        };
    }
    Some(format!(
        "{}/{}",
        kind.to_ascii_lowercase(),
        subtype.to_ascii_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accept_header_matches_prometheus_3() {
        assert_eq!(
            accept_header(ScrapeProtocol::DEFAULT),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
             text/plain;version=0.0.4;q=0.3,\
             */*;q=0.2"
        );
    }

    #[test]
    fn proto_first_accept_header() {
        assert_eq!(
            accept_header_with_escaping(
                ScrapeProtocol::DEFAULT_PROTO_FIRST,
                EscapingScheme::Underscores
            ),
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,\
             application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,\
             application/openmetrics-text;version=0.0.1;q=0.4,\
             text/plain;version=1.0.0;escaping=underscores;q=0.3,\
             text/plain;version=0.0.4;q=0.2,\
             */*;q=0.1"
        );
    }

    #[test]
    fn content_types_select_parsers() {
        for (ct, want) in [
            ("text/plain", Format::PrometheusText),
            (
                "text/plain; version=0.0.4; charset=utf-8",
                Format::PrometheusText,
            ),
            (
                "TEXT/Plain;version=1.0.0;escaping=allow-utf-8",
                Format::PrometheusText,
            ),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Format::OpenMetrics,
            ),
            (
                "application/openmetrics-text;version=0.0.1",
                Format::OpenMetrics,
            ),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                Format::Protobuf,
            ),
            ("text/plain; charset=\"utf-8\"", Format::PrometheusText),
        ] {
            assert_eq!(Format::from_content_type(Some(ct), None), Ok(want), "{ct}");
        }
    }

    #[test]
    fn bad_content_types_fail_without_fallback() {
        assert_eq!(
            Format::from_content_type(None, None),
            Err(UnsupportedContentType::Missing)
        );
        assert_eq!(
            Format::from_content_type(Some("  "), None),
            Err(UnsupportedContentType::Missing)
        );
        assert_eq!(
            Format::from_content_type(Some("application/json"), None),
            Err(UnsupportedContentType::Unsupported(
                "application/json".into()
            ))
        );
        for bad in [
            "text",
            "text/",
            "/plain",
            "text/plain; version",
            "text/plain;=x",
            "te xt/plain",
        ] {
            assert_eq!(
                Format::from_content_type(Some(bad), None),
                Err(UnsupportedContentType::Unparsable(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn fallback_is_used_and_reported() {
        let n = Format::negotiate(
            Some("application/json"),
            Some(ScrapeProtocol::OpenMetricsText1_0_0),
        )
        .unwrap();
        assert_eq!(n.format, Format::OpenMetrics);
        assert_eq!(
            n.fallback_reason,
            Some(UnsupportedContentType::Unsupported(
                "application/json".into()
            ))
        );
        let n =
            Format::negotiate(Some("text/plain"), Some(ScrapeProtocol::PrometheusProto)).unwrap();
        assert_eq!(
            n,
            Negotiated {
                format: Format::PrometheusText,
                fallback_reason: None
            }
        );
        assert_eq!(
            Format::from_content_type(None, Some(ScrapeProtocol::PrometheusProto)),
            Ok(Format::Protobuf)
        );
    }

    #[test]
    fn accept_encoding() {
        assert_eq!(accept_encoding_header(true), "gzip");
        assert_eq!(accept_encoding_header(false), "identity");
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in ScrapeProtocol::ALL {
            assert_eq!(p.as_str().parse::<ScrapeProtocol>(), Ok(*p));
        }
        assert!("PrometheusText0.0.5".parse::<ScrapeProtocol>().is_err());
    }
}

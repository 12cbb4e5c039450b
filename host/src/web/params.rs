//! Request parameters as Prometheus's API reads them.
//!
//! [`Params`] merges the URL query string and, for form `POST`s, the body,
//! as Go's `Request.FormValue`/`Request.Form` do (body values first). The
//! parsers reproduce Prometheus's `parseTime`, `parseDuration`,
//! `parseLimitParam` and `parseMatchersParam`, including their error texts,
//! which scripts and Grafana show to users:
//!
//! - times are Unix seconds with an optional fraction (rounded to the
//!   millisecond) or RFC 3339 (`2015-07-01T20:10:51.781Z`), plus the two
//!   boundary strings client libraries send for "unbounded";
//! - durations are Prometheus durations (`5m`, `1h30m`) or float seconds;
//! - `match[]` selectors must each have a matcher that does not match the
//!   empty string.
//!
//! ```
//! use ember_host::web::params::{parse_duration, parse_time};
//!
//! assert_eq!(parse_time("1.5").unwrap().millis(), 1_500);
//! assert_eq!(parse_time("1970-01-01T00:01:00Z").unwrap().millis(), 60_000);
//! assert_eq!(parse_duration("1m30s").unwrap().as_nanos(), 90_000_000_000);
//! assert_eq!(parse_duration("0.25").unwrap().millis(), 250);
//! ```

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, header};
use ember_model::matcher::{MatchOp, Matcher};
use ember_promql::parser::{AstMatchOp, Expr, VectorSelector, parse_query};
use thiserror::Error;

/// Nanoseconds per millisecond and second.
const NANOS_PER_MILLI: i128 = 1_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The request's form values: body values (for `application/x-www-form-
/// urlencoded` requests other than `GET`) before URL query values, as Go's
/// `Request.Form` orders them.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Collects the values of a request.
    pub fn new(method: &Method, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Self {
        let mut pairs = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if is_form && matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            pairs.extend(url::form_urlencoded::parse(body).into_owned());
        }
        if let Some(query) = query {
            pairs.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Self { pairs }
    }

    /// The first value of `name`, or `""` (Go's `FormValue`).
    pub fn value(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name` in order (Go's `Form[name]`).
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// The parameters of a request, extracted by axum from the method, headers,
/// URL query and body.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = axum::response::Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let method = request.method().clone();
        let headers = request.headers().clone();
        let query = request.uri().query().map(str::to_owned);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self::new(&method, &headers, query.as_deref(), &body))
    }
}

/// A point in time with nanosecond precision, as Go's `time.Time` carries
/// it between parsing and the engine (which works in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(i128);

impl Time {
    /// The earliest time Prometheus represents (`MinTime` of its API).
    pub const MIN: Time = Time((i64::MIN as i128 / 1000 + 62_135_596_801) * NANOS_PER_SECOND);
    /// The latest time Prometheus represents (`MaxTime` of its API).
    pub const MAX: Time =
        Time((i64::MAX as i128 / 1000 - 62_135_596_801) * NANOS_PER_SECOND + 999_999_999);

    /// A time from Unix milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms as i128 * NANOS_PER_MILLI)
    }

    /// Unix milliseconds, rounded down as Prometheus's `timestamp.FromTime`.
    pub fn millis(self) -> i64 {
        let ms = self.0.div_euclid(NANOS_PER_MILLI);
        i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
    }

    /// Unix nanoseconds.
    pub const fn nanos(self) -> i128 {
        self.0
    }
}

/// A duration with nanosecond precision (Go's `time.Duration`); may be
/// negative when given as a negative float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(i64);

impl Duration {
    /// Nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole milliseconds, truncated toward zero as Prometheus's engine
    /// converts its step.
    pub const fn millis(self) -> i64 {
        self.0 / 1_000_000
    }

    /// The duration as a std duration, `None` when negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

/// A parameter that does not parse. The messages are Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    #[error("cannot parse {0:?} to a valid timestamp")]
    Time(String),
    #[error("cannot parse {0:?} to a valid duration")]
    Duration(String),
    #[error("cannot parse {0:?} to a valid duration. It overflows int64")]
    DurationOverflow(String),
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    NotAnInteger(String),
    #[error("strconv.Atoi: parsing {0:?}: value out of range")]
    IntegerOutOfRange(String),
    #[error("limit must be non-negative")]
    NegativeLimit,
    #[error("{0}")]
    Selector(String),
    #[error("match[] must contain at least one non-empty matcher")]
    EmptyMatchers,
}

/// Parses a time as Prometheus's `parseTime`: float Unix seconds (the
/// fraction rounded to milliseconds), else RFC 3339 with optional
/// fractional seconds, else one of the boundary strings of
/// [`Time::MIN`]/[`Time::MAX`].
pub fn parse_time(text: &str) -> Result<Time, ParamError> {
    let error = || ParamError::Time(text.to_owned());
    if let Some(seconds) = parse_go_float(text) {
        if !seconds.is_finite() {
            return Err(error());
        }
        let whole = seconds.trunc();
        // Prometheus rounds the fraction to milliseconds.
        let millis = ((seconds - whole) * 1000.0).round();
        if whole.abs() > 9.2e15 {
            return Err(error());
        }
        // Both parts are in range after the check above.
        let nanos = (whole as i128) * NANOS_PER_SECOND + (millis as i128) * NANOS_PER_MILLI;
        return Ok(Time(nanos));
    }
    if let Some(time) = parse_rfc3339(text) {
        return Ok(time);
    }
    match text {
        "-292273086-05-16T16:47:06Z" => Ok(Time::MIN),
        "292277025-08-18T07:12:54.999999999Z" => Ok(Time::MAX),
        _ => Err(error()),
    }
}

/// Like [`parse_time`], but an absent (empty) value yields `default`, and
/// errors carry Prometheus's `parseTimeParam` wording.
pub fn parse_time_param(params: &Params, name: &str, default: Time) -> Result<Time, String> {
    match params.value(name) {
        "" => Ok(default),
        text => parse_time(text).map_err(|e| format!("Invalid time value for '{name}': {e}")),
    }
}

/// Parses a duration as Prometheus's `parseDuration`: float seconds, else a
/// Prometheus duration string (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, ParamError> {
    if let Some(seconds) = parse_go_float(text) {
        let nanos = seconds * 1e9;
        // The int64 range is [-2^63, 2^63). NaN fails Go's comparisons and
        // converts to an unspecified value there; refusing it is the sane
        // reading, and `contains` is false for NaN.
        let int64_range = (i64::MIN as f64)..-(i64::MIN as f64);
        if !int64_range.contains(&nanos) {
            return Err(ParamError::DurationOverflow(text.to_owned()));
        }
        // In range: checked above; `as` truncates toward zero like Go.
        return Ok(Duration(nanos as i64));
    }
    match ember_config::parse_duration(text) {
        Ok(duration) => i64::try_from(duration.as_nanos())
            .map(Duration)
            .map_err(|_| ParamError::Duration(text.to_owned())),
        Err(_) => Err(ParamError::Duration(text.to_owned())),
    }
}

/// Parses `limit` as Prometheus's `parseLimitParam`: empty is 0 (no limit),
/// negative is refused.
pub fn parse_limit(text: &str) -> Result<usize, ParamError> {
    if text.is_empty() {
        return Ok(0);
    }
    let limit = parse_go_int(text)?;
    usize::try_from(limit).map_err(|_| ParamError::NegativeLimit)
}

/// Go's `strconv.Atoi` with its error texts.
pub fn parse_go_int(text: &str) -> Result<i64, ParamError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::NotAnInteger(text.to_owned()));
    }
    text.parse::<i64>()
        .map_err(|_| ParamError::IntegerOutOfRange(text.to_owned()))
}

/// Go's `strconv.ParseFloat(text, 64)` for the forms that matter here:
/// decimal and exponent notation, `inf`/`infinity`/`nan` in any case, with
/// an optional sign. (Go also takes hexadecimal mantissas and `_` digit
/// separators after a base prefix; nobody sends those as times.)
fn parse_go_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let first = unsigned.bytes().next()?;
    // Rust accepts a few spellings Go does not (none known) and rejects
    // none that Go accepts among these; guard the start so that words such
    // as "infinite" are not half-parsed.
    if !(first.is_ascii_digit()
        || first == b'.'
        || first == b'i'
        || first == b'I'
        || first == b'n'
        || first == b'N')
    {
        return None;
    }
    text.parse::<f64>().ok()
}

/// RFC 3339 as Go's `time.Parse(time.RFC3339Nano, ...)` accepts it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn parse_rfc3339(text: &str) -> Option<Time> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i128 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let value: i128 = fraction[..digits].parse().ok()?;
        nanos = value * 10_i128.pow(9 - digits as u32);
        rest = &fraction[digits..];
    }
    let offset_seconds: i64 = match rest.as_bytes() {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(Time(i128::from(seconds) * NANOS_PER_SECOND + nanos))
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats a time as Go's `time.Time` marshals to JSON in UTC
/// (RFC 3339 with the fraction's trailing zeros removed).
pub fn format_rfc3339_nanos(time: std::time::SystemTime) -> String {
    let (seconds, nanos) = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => (after.as_secs() as i64, after.subsec_nanos()),
        Err(before) => {
            let d = before.duration();
            let mut seconds = -(d.as_secs() as i64);
            let mut nanos = d.subsec_nanos();
            if nanos > 0 {
                seconds -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            (seconds, nanos)
        }
    };
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses one series selector (`match[]`, `match_target`) into matchers, as
/// Prometheus's `parser.ParseMetricSelector`.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, ParamError> {
    let query = parse_query(text).map_err(|e| ParamError::Selector(e.to_string()))?;
    let Expr::VectorSelector(selector) = &query.expr else {
        return Err(ParamError::Selector(format!(
            "1:1: parse error: unexpected expression {text:?}, expected a series selector"
        )));
    };
    selector_matchers(selector)
}

/// The matchers of a parsed vector selector, the metric name included.
pub fn selector_matchers(selector: &VectorSelector) -> Result<Vec<Matcher>, ParamError> {
    if !selector.matchers.or_matchers.is_empty() {
        return Err(ParamError::Selector(
            "parse error: \"or\" inside label matchers is not PromQL".to_owned(),
        ));
    }
    if selector.offset.is_some() || selector.at.is_some() {
        return Err(ParamError::Selector(
            "parse error: a series selector cannot have offset or @ modifiers".to_owned(),
        ));
    }
    let mut matchers = Vec::with_capacity(selector.matchers.matchers.len() + 1);
    if let Some(name) = &selector.name {
        matchers.push(Matcher::equal(
            ember_model::labels::METRIC_NAME,
            name.clone(),
        ));
    }
    for matcher in &selector.matchers.matchers {
        let op = match matcher.op {
            AstMatchOp::Equal => MatchOp::Equal,
            AstMatchOp::NotEqual => MatchOp::NotEqual,
            AstMatchOp::Re(_) => MatchOp::Regex,
            AstMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        let matcher = Matcher::new(op, matcher.name.clone(), matcher.value.clone())
            .map_err(|e| ParamError::Selector(e.to_string()))?;
        matchers.push(matcher);
    }
    Ok(matchers)
}

/// Parses every `match[]` value, as Prometheus's `parseMatchersParam`:
/// each selector needs a matcher that does not match the empty string, so
/// that no request selects every series by accident.
pub fn parse_match_params(selectors: &[&str]) -> Result<Vec<Vec<Matcher>>, ParamError> {
    let mut sets = Vec::with_capacity(selectors.len());
    for selector in selectors {
        let matchers = match parse_selector(selector) {
            Ok(matchers) => matchers,
            // The parser refuses such selectors itself; answer with the
            // API's wording, which is what Prometheus clients see.
            Err(ParamError::Selector(message))
                if message.contains("at least one non-empty matcher") =>
            {
                return Err(ParamError::EmptyMatchers);
            }
            Err(error) => return Err(error),
        };
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(ParamError::EmptyMatchers);
        }
        sets.push(matchers);
    }
    Ok(sets)
}

/// Undoes Prometheus's "values" escaping of a label name in a URL path
/// (`U__http_2e_status__code` is `http.status_code`). A name that is not
/// validly escaped is returned unchanged, as Prometheus does.
pub fn unescape_label_name(name: &str) -> String {
    let Some(escaped) = name.strip_prefix("U__") else {
        return name.to_owned();
    };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(ch) = chars.next() {
        if ch != '_' {
            if !(ch.is_ascii_alphanumeric() || ch == ':') {
                return name.to_owned();
            }
            out.push(ch);
            continue;
        }
        let mut hex = String::new();
        let mut closed = false;
        for next in chars.by_ref() {
            if next == '_' {
                closed = true;
                break;
            }
            hex.push(next);
        }
        if !closed {
            return name.to_owned();
        }
        if hex.is_empty() {
            out.push('_');
            continue;
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(decoded) => out.push(decoded),
            None => return name.to_owned(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_round_to_milliseconds() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("1", 1_000),
            ("1.5", 1_500),
            ("1435781451.781", 1_435_781_451_781),
            ("1.0004", 1_000),
            ("1.0006", 1_001),
            ("-1.5", -1_500),
            ("1e3", 1_000_000),
            ("+2", 2_000),
            (".5", 500),
        ];
        for (text, millis) in cases {
            assert_eq!(parse_time(text).unwrap().millis(), *millis, "{text}");
        }
    }

    #[test]
    fn rfc3339_times_parse_with_offsets_and_fractions() {
        let cases: &[(&str, i64)] = &[
            ("2015-07-01T20:10:51.781Z", 1_435_781_451_781),
            ("2015-07-01T20:10:51Z", 1_435_781_451_000),
            ("2015-07-01T22:10:51.781+02:00", 1_435_781_451_781),
            ("2015-07-01T18:40:51.781-01:30", 1_435_781_451_781),
            ("2015-07-01T20:10:51.7819999Z", 1_435_781_451_781),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
        ];
        for (text, millis) in cases {
            assert_eq!(parse_time(text).unwrap().millis(), *millis, "{text}");
        }
        for bad in [
            "",
            "now",
            "2015-07-01",
            "2015-07-01 20:10:51Z",
            "2015-07-01T20:10:51",
            "2015-02-29T00:00:00Z",
            "2015-07-01T24:00:00Z",
            "2015-07-01T20:10:51.Z",
            "2015-07-01T20:10:51+0200",
            "NaN",
            "Inf",
            "1e400",
            "infinite",
        ] {
            let error = parse_time(bad).expect_err(bad);
            assert_eq!(
                error.to_string(),
                format!("cannot parse {bad:?} to a valid timestamp")
            );
        }
    }

    #[test]
    fn boundary_times_round_trip() {
        assert_eq!(parse_time("-292273086-05-16T16:47:06Z"), Ok(Time::MIN));
        assert_eq!(
            parse_time("292277025-08-18T07:12:54.999999999Z"),
            Ok(Time::MAX)
        );
        assert_eq!(Time::MIN.millis(), -9_223_309_901_257_974_000);
        assert_eq!(Time::MAX.millis(), 9_223_309_901_257_974_999);
    }

    #[test]
    fn durations_are_prometheus_strings_or_float_seconds() {
        let cases: &[(&str, i64)] = &[
            ("15s", 15_000_000_000),
            ("5m", 300_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("100ms", 100_000_000),
            ("1d", 86_400_000_000_000),
            ("0", 0),
            ("15", 15_000_000_000),
            ("0.5", 500_000_000),
            ("1e-3", 1_000_000),
            ("-5", -5_000_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_duration(text).unwrap().as_nanos(), *nanos, "{text}");
        }
        for bad in ["", "abc", "5x", "1m1h", "-5m", "1.5m"] {
            assert_eq!(
                parse_duration(bad).unwrap_err().to_string(),
                format!("cannot parse {bad:?} to a valid duration")
            );
        }
        assert_eq!(
            parse_duration("1e10").unwrap_err().to_string(),
            "cannot parse \"1e10\" to a valid duration. It overflows int64"
        );
        assert_eq!(parse_duration("0.0001").unwrap().millis(), 0);
    }

    #[test]
    fn limits_follow_atoi() {
        assert_eq!(parse_limit(""), Ok(0));
        assert_eq!(parse_limit("10"), Ok(10));
        assert_eq!(parse_limit("+3"), Ok(3));
        assert_eq!(parse_limit("-1"), Err(ParamError::NegativeLimit));
        assert_eq!(
            parse_limit("ten").unwrap_err().to_string(),
            "strconv.Atoi: parsing \"ten\": invalid syntax"
        );
        assert_eq!(
            parse_limit("1.5").unwrap_err().to_string(),
            "strconv.Atoi: parsing \"1.5\": invalid syntax"
        );
        assert_eq!(
            parse_limit("99999999999999999999").unwrap_err().to_string(),
            "strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
    }

    #[test]
    fn form_bodies_come_before_query_values() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let params = Params::new(
            &Method::POST,
            &headers,
            Some("query=url&match[]=a"),
            b"query=body%20text&match%5B%5D=b",
        );
        assert_eq!(params.value("query"), "body text");
        assert_eq!(params.values("match[]"), ["b", "a"]);
        assert_eq!(params.value("absent"), "");
        // A GET's body is never read, nor a body of another content type.
        let get = Params::new(&Method::GET, &headers, Some("query=url"), b"query=body");
        assert_eq!(get.value("query"), "url");
        let json = Params::new(&Method::POST, &HeaderMap::new(), None, b"query=body");
        assert_eq!(json.value("query"), "");
    }

    #[test]
    fn match_params_need_a_non_empty_matcher() {
        let sets = parse_match_params(&["up", "{job=~\"a|b\", x!=\"\"}"]).unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0][0].to_string(), "__name__=\"up\"");
        // The parser refuses such a selector before the API's own check.
        let error = parse_match_params(&["{job=~\".*\"}"]).unwrap_err();
        assert!(
            error.to_string().contains("at least one non-empty matcher"),
            "{error}"
        );
        assert!(matches!(
            parse_match_params(&["up{"]),
            Err(ParamError::Selector(_))
        ));
        assert!(matches!(
            parse_match_params(&["sum(up)"]),
            Err(ParamError::Selector(_))
        ));
    }

    #[test]
    fn escaped_label_names_decode() {
        assert_eq!(unescape_label_name("job"), "job");
        assert_eq!(
            unescape_label_name("U__http_2e_status__code"),
            "http.status_code"
        );
        assert_eq!(unescape_label_name("U__a_20_b"), "a b");
        assert_eq!(unescape_label_name("U__bad_zz_"), "U__bad_zz_");
        assert_eq!(unescape_label_name("U__open_2e"), "U__open_2e");
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_435_781_451_780);
        assert_eq!(format_rfc3339_nanos(time), "2015-07-01T20:10:51.78Z");
        assert_eq!(
            format_rfc3339_nanos(std::time::UNIX_EPOCH),
            "1970-01-01T00:00:00Z"
        );
    }
}

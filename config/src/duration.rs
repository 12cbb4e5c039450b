//! Prometheus's `<duration>` grammar: parsing and canonical formatting.
//!
//! A duration is a sequence of `<integer><unit>` terms with units drawn, in strictly
//! decreasing order and at most once each, from `y` (365 days), `w`, `d`, `h`, `m`, `s`
//! and `ms`, or the bare string `0`. This is exactly what Prometheus's
//! `model.ParseDuration` accepts, so a `prometheus.yml` that Prometheus loads is read
//! the same way here: fractions (`1.5h`), signs and Go-only units (`1us`) are rejected.

use std::time::Duration;

/// Why a string is not a valid `<duration>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("empty duration string")]
    Empty,
    /// The string does not follow the `<integer><unit>...` shape, or units are out of order.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// A term used a unit other than `y w d h m s ms`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The offending unit.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// The total does not fit in a signed 64-bit count of nanoseconds, Prometheus's limit.
    #[error("duration out of range")]
    OutOfRange,
}

const MILLIS_PER_SECOND: u64 = 1_000;
const MILLIS_PER_MINUTE: u64 = 60 * MILLIS_PER_SECOND;
const MILLIS_PER_HOUR: u64 = 60 * MILLIS_PER_MINUTE;
const MILLIS_PER_DAY: u64 = 24 * MILLIS_PER_HOUR;
const MILLIS_PER_WEEK: u64 = 7 * MILLIS_PER_DAY;
const MILLIS_PER_YEAR: u64 = 365 * MILLIS_PER_DAY;

/// Units in the only order Prometheus accepts them, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", MILLIS_PER_YEAR),
    ("w", MILLIS_PER_WEEK),
    ("d", MILLIS_PER_DAY),
    ("h", MILLIS_PER_HOUR),
    ("m", MILLIS_PER_MINUTE),
    ("s", MILLIS_PER_SECOND),
    ("ms", 1),
];

/// Prometheus stores durations as Go `time.Duration`, a signed nanosecond count; anything
/// longer is rejected so that a config valid here is valid there.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Prometheus `<duration>` such as `1h30m`, `15s`, `2w` or `0`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ember_config::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(ember_config::parse_duration("30s1m").is_err()); // units out of order
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    match input {
        "" => return Err(DurationError::Empty),
        "0" => return Ok(Duration::ZERO),
        _ => {}
    }
    let invalid = || DurationError::Invalid(input.to_owned());
    let mut rest = input;
    let mut total_millis: u128 = 0;
    // Index into UNITS of the previous term's unit; every later term must use a smaller unit.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| DurationError::OutOfRange)?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_end == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let Some(position) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit {
                unit: unit.to_owned(),
                input: input.to_owned(),
            });
        };
        if last_unit.is_some_and(|last| position <= last) {
            return Err(invalid());
        }
        last_unit = Some(position);
        total_millis += u128::from(value) * u128::from(UNITS[position].1);
        if total_millis * 1_000_000 > MAX_NANOS {
            return Err(DurationError::OutOfRange);
        }
    }
    let millis = u64::try_from(total_millis).map_err(|_| DurationError::OutOfRange)?;
    Ok(Duration::from_millis(millis))
}

/// Formats a duration the way Prometheus prints one (`1m30s`, `2w`, `0s`).
///
/// Years and weeks are used only when they divide the remaining time exactly, because
/// `90d` reads better than `12w6d`. Precision below a millisecond is dropped, as in
/// Prometheus.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ember_config::format_duration(Duration::from_secs(90)), "1m30s");
/// assert_eq!(ember_config::format_duration(Duration::ZERO), "0s");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let mut millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, length) in UNITS {
        let only_if_exact = length >= MILLIS_PER_WEEK;
        if only_if_exact && millis % length != 0 {
            continue;
        }
        let count = millis / length;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(unit);
            millis -= count * length;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_in_order() {
        let expected = MILLIS_PER_YEAR
            + 2 * MILLIS_PER_WEEK
            + 3 * MILLIS_PER_DAY
            + 4 * MILLIS_PER_HOUR
            + 5 * MILLIS_PER_MINUTE
            + 6 * MILLIS_PER_SECOND
            + 7;
        assert_eq!(
            parse_duration("1y2w3d4h5m6s7ms"),
            Ok(Duration::from_millis(expected))
        );
    }

    #[test]
    fn accepts_zero_forms() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for bad in [
            "1", "s", "1.5h", "-1s", "1h ", " 1h", "1s1m", "1m1m", "10", "1h30",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(matches!(
            parse_duration("5us"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "us"
        ));
    }

    #[test]
    fn rejects_durations_go_cannot_hold() {
        assert_eq!(parse_duration("293y"), Err(DurationError::OutOfRange));
        assert!(parse_duration("292y").is_ok());
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::OutOfRange)
        );
    }

    #[test]
    fn formats_like_prometheus() {
        let cases = [
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_millis(30), "30ms"),
            (Duration::from_secs(90 * 86_400), "90d"),
            (Duration::from_secs(14 * 86_400), "2w"),
            (Duration::from_secs(365 * 86_400), "1y"),
            (Duration::from_secs(3_600 + 1), "1h1s"),
            (Duration::from_micros(1_500), "1ms"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["1y2w3d4h5m6s7ms", "15s", "5m", "1d12h", "2w", "0s"] {
            let parsed = parse_duration(text).expect("valid");
            assert_eq!(parse_duration(&format_duration(parsed)), Ok(parsed));
        }
    }
}

//! JSON exactly as Prometheus writes it.
//!
//! Prometheus encodes API responses with jsoniter in its standard-library
//! compatible mode, plus its own encoders for sample values and timestamps.
//! Clients compare bytes more often than one would hope (golden files,
//! caches keyed by body, diffing tools), so Ember reproduces the details:
//!
//! - strings escape `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`,
//!   U+2028/U+2029 as `\u2028`/`\u2029`, and control characters other than
//!   `\n`, `\r`, `\t` as `\u00XX` (see [`write_string`] and [`GoFormatter`]);
//! - sample values are strings formatted as Go's
//!   `strconv.FormatFloat(v, 'f', -1, 64)`, switching to `'e'` below 1e-6 and
//!   from 1e21 on in magnitude, with `+Inf`, `-Inf` and `NaN`
//!   ([`write_sample_value`]);
//! - timestamps are numbers of seconds written from integer milliseconds
//!   with exactly the non-zero millisecond digits Prometheus writes
//!   (`1.5` s is `1.500`, `2` s is `2`) ([`write_timestamp`]).
//!
//! ```
//! use ember_host::web::json::{format_sample_value, write_timestamp};
//!
//! assert_eq!(format_sample_value(0.1), "0.1");
//! assert_eq!(format_sample_value(1e21), "1e+21");
//! assert_eq!(format_sample_value(f64::INFINITY), "+Inf");
//! let mut out = Vec::new();
//! write_timestamp(&mut out, 1_500);
//! assert_eq!(out, b"1.500");
//! ```

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// Serialises `value` with Go-compatible string escaping.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// A [`serde_json`] formatter that escapes strings as Go's `encoding/json`
/// (and jsoniter's compatible mode) do: HTML-sensitive characters and the
/// JavaScript line terminators are escaped, other control characters use
/// `\u00XX` rather than `\b`/`\f`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has already split out the characters it escapes
        // itself (quotes, backslash, control characters); what is left may
        // still hold the characters Go escapes in addition.
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            if let Some(escape) = go_extra_escape(ch) {
                writer.write_all(&fragment.as_bytes()[start..index])?;
                writer.write_all(escape.as_bytes())?;
                start = index + ch.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        let text: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::AsciiControl(byte) => {
                return write_control_escape(writer, byte);
            }
        };
        writer.write_all(text)
    }
}

/// The escapes Go applies beyond JSON's required ones.
fn go_extra_escape(ch: char) -> Option<&'static str> {
    match ch {
        '<' => Some("\\u003c"),
        '>' => Some("\\u003e"),
        '&' => Some("\\u0026"),
        '\u{2028}' => Some("\\u2028"),
        '\u{2029}' => Some("\\u2029"),
        _ => None,
    }
}

fn write_control_escape<W: ?Sized + io::Write>(writer: &mut W, byte: u8) -> io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    writer.write_all(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 0xf)],
    ])
}

/// Appends `s` as a quoted JSON string with Go's escaping.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut start = 0;
    for (index, ch) in s.char_indices() {
        let simple: Option<&str> = match ch {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            other => go_extra_escape(other),
        };
        if let Some(escape) = simple {
            out.extend_from_slice(&s.as_bytes()[start..index]);
            out.extend_from_slice(escape.as_bytes());
            start = index + ch.len_utf8();
        } else if (ch as u32) < 0x20 {
            out.extend_from_slice(&s.as_bytes()[start..index]);
            // Writing to a Vec cannot fail.
            let _ = write_control_escape(out, ch as u8);
            start = index + 1;
        }
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
    out.push(b'"');
}

/// Appends a millisecond timestamp as seconds, as Prometheus's
/// `jsonutil.MarshalTimestamp` does: the integer part, then `.` and three
/// digits when the milliseconds are not zero.
pub fn write_timestamp(out: &mut Vec<u8>, t: i64) {
    use std::io::Write as _;
    let magnitude = t.unsigned_abs();
    if t < 0 {
        out.push(b'-');
    }
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", magnitude / 1000);
    let fraction = magnitude % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

/// Appends a sample value as a quoted string (see [`format_sample_value`]).
pub fn write_sample_value(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    out.push(b'"');
    let magnitude = v.abs();
    if v.is_finite() && (magnitude == 0.0 || (1e-6..1e21).contains(&magnitude)) {
        // The common case, written in place: results can hold millions of
        // points, and a String per value would dominate the encoding time.
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(format_sample_value(v).as_bytes());
    }
    out.push(b'"');
}

/// A sample value as Prometheus's `jsonutil.MarshalFloat` writes it:
/// `strconv.FormatFloat(v, 'f', -1, 64)`, or `'e'` when `0 < |v| < 1e-6` or
/// `|v| >= 1e21`; infinities as `+Inf`/`-Inf`, NaN as `NaN`.
pub fn format_sample_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        go_exponent_format(v)
    } else {
        // Rust's `Display` for floats is the shortest round-trip digits in
        // positional notation, which is what Go's 'f' with precision -1
        // produces (including `-0` for negative zero).
        format!("{v}")
    }
}

/// A float as Go's `encoding/json` writes a number: shortest digits in
/// positional notation, exponent form below 1e-6 and from 1e21 in
/// magnitude with the exponent's leading zero removed (`1e-7`). Not
/// defined for NaN and infinities, which JSON cannot hold; those are
/// written as `0`.
pub fn write_go_json_number(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if !v.is_finite() {
        out.push(b'0');
        return;
    }
    let magnitude = v.abs();
    // Writing to a Vec cannot fail.
    if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
        // Rust writes `1e-7` and `1e21`; Go writes `1e-7` and `1e+21`.
        if magnitude >= 1.0
            && let Some(position) = out.iter().rposition(|&b| b == b'e')
        {
            out.insert(position + 1, b'+');
        }
    }
}

/// Go's `'e'` format with shortest digits: Rust's `{:e}` has the same
/// digits but writes the exponent bare (`1e-7`), where Go writes a sign and
/// at least two digits (`1e-07`).
fn go_exponent_format(v: f64) -> String {
    let rust = format!("{v:e}");
    let Some((mantissa, exponent)) = rust.split_once('e') else {
        return rust;
    };
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_format_as_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (-1e21, "-1e+21"),
            (1e-6, "0.000001"),
            (9.99e-7, "9.99e-07"),
            (1e-7, "1e-07"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1.7976931348623157e20, "179769313486231570000"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_sample_value(*value), *expected, "{value:e}");
            let mut quoted = Vec::new();
            write_sample_value(&mut quoted, *value);
            assert_eq!(quoted, format!("\"{expected}\"").into_bytes(), "{value:e}");
        }
    }

    #[test]
    fn json_numbers_format_as_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (0.000018245, "0.000018245"),
            (3.94e-6, "0.00000394"),
            (9.5e-7, "9.5e-7"),
            (1e21, "1e+21"),
            (12.5, "12.5"),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            write_go_json_number(&mut out, *value);
            assert_eq!(String::from_utf8(out).unwrap(), *expected);
        }
    }

    #[test]
    fn timestamps_keep_millisecond_digits() {
        let cases: &[(i64, &str)] = &[
            (0, "0"),
            (1_000, "1"),
            (1_500, "1.500"),
            (1_435_781_451_781, "1435781451.781"),
            (1_050, "1.050"),
            (1_005, "1.005"),
            (-1_500, "-1.500"),
            (-5, "-0.005"),
            (i64::MIN, "-9223372036854775.808"),
        ];
        for (t, expected) in cases {
            let mut out = Vec::new();
            write_timestamp(&mut out, *t);
            assert_eq!(String::from_utf8(out).unwrap(), *expected);
        }
    }

    #[test]
    fn strings_escape_like_go() {
        let input = "a\"b\\c\nd\re\tf\u{1}g<h>i&j\u{2028}k\u{8}l\u{c}é";
        let expected = r#""a\"b\\c\nd\re\tf\u0001g\u003ch\u003ei\u0026j\u2028k\u0008l\u000cé""#;
        let mut out = Vec::new();
        write_string(&mut out, input);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // The serde path agrees with the hand-written one.
        let via_serde = to_vec(input).unwrap();
        assert_eq!(String::from_utf8(via_serde).unwrap(), expected);
    }
}

//! Byte-level scanning shared by the text and OpenMetrics parsers.
//!
//! Everything here works on a `&str` that was validated as UTF-8 once, up
//! front: the scanners only ever split at ASCII bytes, so every slice they
//! produce is valid UTF-8 as well and no per-token validation is needed.

use super::error::{ParseError, ParseErrorKind};

/// A string produced by the lexer: either a slice of the input or, when the
/// source contained escapes, a slice of the parser's scratch buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StrRef {
    pub start: usize,
    pub end: usize,
    pub in_scratch: bool,
}

impl StrRef {
    pub fn input(start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            in_scratch: false,
        }
    }

    pub fn resolve<'a>(self, input: &'a str, scratch: &'a str) -> &'a str {
        let source = if self.in_scratch { scratch } else { input };
        source.get(self.start..self.end).unwrap_or("")
    }
}

/// One `name="value"` pair, as positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LabelSpan {
    pub name: StrRef,
    pub value: StrRef,
}

const METRIC_START: u8 = 1;
const METRIC_CONT: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CONT: u8 = 8;

/// Character classes of the legacy name grammar, one lookup per byte.
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let mut class = 0;
        if alpha || c == b':' {
            class |= METRIC_START | METRIC_CONT;
        }
        if digit {
            class |= METRIC_CONT | LABEL_CONT;
        }
        if alpha {
            class |= LABEL_START | LABEL_CONT;
        }
        table[b] = class;
        b += 1;
    }
    table
};

/// Whether `name` is a legacy metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_legacy_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && CLASS[bytes[0] as usize] & METRIC_START != 0
        && bytes[1..]
            .iter()
            .all(|&b| CLASS[b as usize] & METRIC_CONT != 0)
}

/// Whether `name` is a legacy label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_legacy_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && CLASS[bytes[0] as usize] & LABEL_START != 0
        && bytes[1..]
            .iter()
            .all(|&b| CLASS[b as usize] & LABEL_CONT != 0)
}

/// A position in the input with line bookkeeping for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    pub input: &'a str,
    pub bytes: &'a [u8],
    pub pos: usize,
    /// 1-based number of the line `line_start` begins.
    pub line: usize,
    pub line_start: usize,
    /// Where the input stops being valid UTF-8, if it does.
    pub invalid_utf8_at: Option<usize>,
}

impl<'a> Cursor<'a> {
    /// Validates `raw` once; an invalid tail is cut off and reported when
    /// the parser reaches it, so earlier entries still carry line numbers.
    pub fn new(raw: &'a [u8]) -> Self {
        let (input, invalid_utf8_at) = match std::str::from_utf8(raw) {
            Ok(s) => (s, None),
            Err(e) => {
                let valid = e.valid_up_to();
                // The prefix up to `valid_up_to` is valid by definition.
                let s = std::str::from_utf8(&raw[..valid]).unwrap_or("");
                (s, Some(valid))
            }
        };
        Self {
            input,
            bytes: input.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            invalid_utf8_at,
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes a `\n` at the current position and starts a new line.
    #[inline]
    pub fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    #[inline]
    pub fn skip_blanks(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Scans a legacy metric name starting here; returns its end.
    #[inline]
    pub fn scan_class(&mut self, start_class: u8, cont_class: u8) -> Option<StrRef> {
        let start = self.pos;
        let first = *self.bytes.get(start)?;
        if CLASS[first as usize] & start_class == 0 {
            return None;
        }
        let mut end = start + 1;
        while let Some(&b) = self.bytes.get(end) {
            if CLASS[b as usize] & cont_class == 0 {
                break;
            }
            end += 1;
        }
        self.pos = end;
        Some(StrRef::input(start, end))
    }

    pub fn scan_metric_name(&mut self) -> Option<StrRef> {
        self.scan_class(METRIC_START, METRIC_CONT)
    }

    pub fn scan_label_name(&mut self) -> Option<StrRef> {
        self.scan_class(LABEL_START, LABEL_CONT)
    }

    /// Scans a double-quoted string whose opening quote is at the cursor.
    ///
    /// `\\`, `\"` and `\n` are unescaped; any other backslash sequence is
    /// kept as written (as Prometheus and the OpenMetrics reference parser
    /// do). The result borrows the input unless an escape was present, in
    /// which case the unescaped text is appended to `scratch`.
    pub fn scan_quoted(&mut self, scratch: &mut String) -> Result<StrRef, ParseError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let start = self.pos;
        let rest = &self.bytes[start..];
        match memchr::memchr3(b'"', b'\\', b'\n', rest) {
            Some(i) if rest[i] == b'"' => {
                self.pos = start + i + 1;
                return Ok(StrRef::input(start, start + i));
            }
            Some(i) if rest[i] == b'\\' => {}
            Some(i) => {
                self.pos = start + i;
                return Err(self.unexpected("closing quote"));
            }
            None => {
                self.pos = self.bytes.len();
                return Err(self.unexpected("closing quote"));
            }
        }
        let scratch_start = scratch.len();
        let mut copied = start;
        let mut i = start;
        loop {
            let Some(off) = memchr::memchr3(b'"', b'\\', b'\n', &self.bytes[i..]) else {
                self.pos = self.bytes.len();
                return Err(self.unexpected("closing quote"));
            };
            i += off;
            match self.bytes[i] {
                b'"' => {
                    scratch.push_str(&self.input[copied..i]);
                    self.pos = i + 1;
                    return Ok(StrRef {
                        start: scratch_start,
                        end: scratch.len(),
                        in_scratch: true,
                    });
                }
                b'\\' => {
                    scratch.push_str(&self.input[copied..i]);
                    match self.bytes.get(i + 1) {
                        Some(b'\\') => scratch.push('\\'),
                        Some(b'"') => scratch.push('"'),
                        Some(b'n') => scratch.push('\n'),
                        Some(b'\n') | None => {
                            self.pos = i + 1;
                            return Err(self.unexpected("closing quote"));
                        }
                        Some(_) => {
                            // Unknown escape: keep the backslash, let the
                            // next character be copied verbatim.
                            scratch.push('\\');
                            copied = i + 1;
                            i += 1;
                            continue;
                        }
                    }
                    i += 2;
                    copied = i;
                }
                _ => {
                    self.pos = i;
                    return Err(self.unexpected("closing quote"));
                }
            }
        }
    }

    /// Scans up to (not including) the next blank, tab or newline, or the
    /// end of input.
    #[inline]
    pub fn scan_until_blank(&mut self) -> StrRef {
        let start = self.pos;
        let rest = &self.bytes[start..];
        let len = memchr::memchr3(b' ', b'\t', b'\n', rest).unwrap_or(rest.len());
        self.pos = start + len;
        StrRef::input(start, start + len)
    }

    /// Scans up to the next space or newline (OpenMetrics tokens; tabs are
    /// part of the token and make it invalid).
    #[inline]
    pub fn scan_until_space(&mut self) -> StrRef {
        let start = self.pos;
        let rest = &self.bytes[start..];
        let len = memchr::memchr2(b' ', b'\n', rest).unwrap_or(rest.len());
        self.pos = start + len;
        StrRef::input(start, start + len)
    }

    /// Scans to the end of the line (not consuming the newline).
    pub fn scan_line_rest(&mut self) -> StrRef {
        let start = self.pos;
        let rest = &self.bytes[start..];
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.pos = start + len;
        StrRef::input(start, start + len)
    }

    pub fn error_at(&self, pos: usize, kind: ParseErrorKind) -> ParseError {
        // An error at the point where valid UTF-8 stops is really an
        // encoding error, whatever the grammar expected there.
        let kind = match self.invalid_utf8_at {
            Some(bad) if pos >= bad => ParseErrorKind::InvalidUtf8,
            _ => kind,
        };
        // `pos` may lie on a later line than `line_start` (a token that ran
        // over a newline) or an earlier one (a rule checked after its line
        // was consumed), so count the newlines in between.
        let pos = pos.min(self.input.len());
        let line = if pos >= self.line_start {
            self.line + memchr::memchr_iter(b'\n', &self.bytes[self.line_start..pos]).count()
        } else {
            self.line - memchr::memchr_iter(b'\n', &self.bytes[pos..self.line_start]).count()
        };
        let line_start = memchr::memrchr(b'\n', &self.bytes[..pos]).map_or(0, |i| i + 1);
        let column = self
            .input
            .get(line_start..pos)
            .map_or(0, |s| s.chars().count())
            + 1;
        ParseError {
            line,
            column,
            offset: pos,
            kind,
        }
    }

    pub fn error(&self, kind: ParseErrorKind) -> ParseError {
        self.error_at(self.pos, kind)
    }

    /// "expected X, got Y" at the cursor.
    pub fn unexpected(&self, expected: &'static str) -> ParseError {
        self.error(ParseErrorKind::Unexpected {
            expected,
            found: self.describe_here(),
        })
    }

    /// A short, quoted rendering of the input at the cursor.
    pub fn describe_here(&self) -> String {
        if self.pos >= self.bytes.len() {
            return if self.invalid_utf8_at.is_some() {
                "invalid UTF-8".to_owned()
            } else {
                "end of input".to_owned()
            };
        }
        match self.bytes[self.pos] {
            b'\n' => "end of line".to_owned(),
            b' ' => "\" \"".to_owned(),
            b'\t' => "tab".to_owned(),
            _ => {
                let rest = &self.input[self.pos..];
                let token: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, ' ' | '\t' | '\n'))
                    .take(24)
                    .collect();
                format!("{token:?}")
            }
        }
    }
}

/// Whether `name` appears twice among `labels` (label sets are small, so a
/// quadratic scan beats hashing).
pub(crate) fn find_duplicate(labels: &[LabelSpan], input: &str, scratch: &str) -> Option<usize> {
    for (i, a) in labels.iter().enumerate().skip(1) {
        let name = a.name.resolve(input, scratch);
        if labels[..i]
            .iter()
            .any(|b| b.name.resolve(input, scratch) == name)
        {
            return Some(i);
        }
    }
    None
}

/// Parses a float the way Prometheus does: Go's `strconv.ParseFloat`
/// syntax restricted to the pre-Go-1.13 forms (no hex floats, no digit
/// separators), so `NaN`, `Inf`, `+Inf`, `-Inf`, `infinity` (any case) are
/// accepted and out-of-range literals are rejected rather than rounded to
/// infinity.
#[inline]
pub fn parse_float(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    if let Some(v) = parse_simple_decimal(bytes) {
        return Some(v);
    }
    parse_float_slow(s)
}

#[cold]
fn parse_float_slow(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    let unsigned = match bytes.first()? {
        b'+' | b'-' => &bytes[1..],
        _ => bytes,
    };
    let first = *unsigned.first()?;
    if first.eq_ignore_ascii_case(&b'n') {
        // Go accepts "NaN" only without a sign.
        return (unsigned.len() == bytes.len() && unsigned.eq_ignore_ascii_case(b"nan"))
            .then_some(f64::NAN);
    }
    if first.eq_ignore_ascii_case(&b'i') {
        if unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity") {
            return Some(if bytes[0] == b'-' {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        return None;
    }
    // Only digits, one dot, and an exponent may follow; this excludes hex
    // floats, digit separators and the words Rust would also accept.
    if !unsigned
        .iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // Go reports a range error instead of rounding to infinity.
    if v.is_infinite() { None } else { Some(v) }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The common case, `-?\d+(\.\d+)?` with at most 15 significant digits,
/// converted exactly: the mantissa and the power of ten are both exact
/// doubles, so one division rounds correctly (Clinger's fast path).
#[inline]
fn parse_simple_decimal(bytes: &[u8]) -> Option<f64> {
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut frac_digits: usize = 0;
    let mut seen_dot = false;
    let mut count = 0;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                if seen_dot {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if count == 0 || count > 15 || (seen_dot && frac_digits == 0) {
        return None;
    }
    // `mantissa` < 10^15 < 2^53: exact.
    let v = mantissa as f64 / POW10[frac_digits];
    Some(if negative { -v } else { v })
}

/// Parses a Go `strconv.ParseInt(s, 10, 64)` integer.
#[inline]
pub fn parse_int(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        v = v.checked_mul(10)?;
        v = if negative {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// An OpenMetrics timestamp (seconds, possibly fractional) as exact
/// nanoseconds when the literal is a plain decimal, otherwise via `f64`.
/// Infinite and NaN timestamps are rejected.
pub fn parse_seconds_to_nanos(s: &str) -> Option<i128> {
    if let Some(ns) = parse_decimal_seconds_exact(s.as_bytes()) {
        return Some(ns);
    }
    let secs = parse_float(s)?;
    if !secs.is_finite() {
        return None;
    }
    // Saturating conversion: absurdly large timestamps clamp.
    Some((secs * 1e9) as i128)
}

fn parse_decimal_seconds_exact(bytes: &[u8]) -> Option<i128> {
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &digits[digits.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut secs: i128 = 0;
    for &b in int_part {
        if !b.is_ascii_digit() {
            return None;
        }
        secs = secs.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let mut nanos: i128 = 0;
    for (i, &b) in frac_part.iter().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        if i < 9 {
            nanos = nanos * 10 + i128::from(b - b'0');
        }
    }
    for _ in frac_part.len()..9 {
        nanos *= 10;
    }
    let total = secs.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    Some(if negative { -total } else { total })
}

/// Nanoseconds to milliseconds, truncating toward zero like Prometheus and
/// saturating at the `i64` range.
pub fn nanos_to_millis(ns: i128) -> i64 {
    let ms = ns / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_go_parse_float() {
        for (s, want) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("0.1", 0.1),
            ("1e3", 1000.0),
            ("1.5E-3", 0.0015),
            ("+3", 3.0),
            (".5", 0.5),
            ("1.", 1.0),
            ("0000000000000000000000000001.2e-1", 0.12),
            ("123456789012345678", 123456789012345678.0),
            ("9223372036854775808", 9223372036854775808.0),
        ] {
            assert_eq!(parse_float(s), Some(want), "{s}");
        }
        for s in ["+Inf", "Inf", "inf", "INFINITY", "+infinity"] {
            assert_eq!(parse_float(s), Some(f64::INFINITY), "{s}");
        }
        assert_eq!(parse_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        assert!(parse_float("nan").is_some_and(f64::is_nan));
        for s in [
            "", "+", "-", ".", "e5", "1_2", "0x1p-3", "0X1", "0x1", "0b1", "0o1", "1e400", "+NaN",
            "-nan", "infinit", "1 ", " 1", "1..2", "abc", "1e", "--1",
        ] {
            assert_eq!(parse_float(s), None, "{s:?}");
        }
    }

    #[test]
    fn fast_path_agrees_with_std() {
        for s in [
            "0.1",
            "0.3",
            "123.456",
            "999999999999999",
            "12345.6789012345",
            "-0.000001",
        ] {
            assert_eq!(parse_float(s), s.parse::<f64>().ok(), "{s}");
        }
    }

    #[test]
    fn ints_follow_go_parse_int() {
        assert_eq!(parse_int("-3982045"), Some(-3982045));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        for s in ["9223372036854775808", "", "-", "1.0", "1e3", "1_000"] {
            assert_eq!(parse_int(s), None, "{s:?}");
        }
    }

    #[test]
    fn om_timestamps_are_exact() {
        assert_eq!(parse_seconds_to_nanos("1.001"), Some(1_001_000_000));
        assert_eq!(parse_seconds_to_nanos("-1.1"), Some(-1_100_000_000));
        assert_eq!(parse_seconds_to_nanos("1.5e3"), Some(1_500_000_000_000));
        assert_eq!(parse_seconds_to_nanos("0.0000000001"), Some(0));
        assert_eq!(parse_seconds_to_nanos("NaN"), None);
        assert_eq!(parse_seconds_to_nanos("Inf"), None);
        assert_eq!(nanos_to_millis(1_001_999_999), 1001);
        assert_eq!(nanos_to_millis(i128::MAX), i64::MAX);
    }

    #[test]
    fn legacy_names() {
        assert!(is_legacy_metric_name("a:b_c9"));
        assert!(!is_legacy_metric_name("0a"));
        assert!(!is_legacy_metric_name("a.b"));
        assert!(is_legacy_label_name("_a1"));
        assert!(!is_legacy_label_name("a:b"));
        assert!(!is_legacy_label_name(""));
    }
}

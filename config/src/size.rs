//! Prometheus's `<size>` grammar: byte sizes such as `512MB`, parsed in powers of two.
//!
//! Prometheus parses sizes with `units.ParseBase2Bytes`: a sequence of
//! `<number><unit>` terms (`1GB512MB`, `1.5KB`), where the unit is `B`, `KB`, `MB`, `GB`,
//! `TB`, `PB` or `EB` and `1KB` is 1024 bytes. The IEC spellings (`KiB`, `MiB`, ...) are
//! accepted too, as there. A unit is required, except for the bare `0`.

/// Why a string is not a valid `<size>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The string is not a sequence of `<number><unit>` terms.
    #[error("invalid size {0:?}: expected a number followed by a unit (B, KB, MB, GB, TB, PB, EB)")]
    Invalid(String),
    /// A term used an unknown unit, or none.
    #[error("unknown unit {unit:?} in size {input:?}: expected one of B, KB, MB, GB, TB, PB, EB")]
    UnknownUnit {
        /// The offending unit; empty when the number had no unit.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// The size was negative; Ember rejects it rather than treating it as "no limit".
    #[error("size {0:?} must not be negative")]
    Negative(String),
    /// The size does not fit in a signed 64-bit byte count, Prometheus's limit.
    #[error("size {0:?} is out of range")]
    OutOfRange(String),
}

/// Decimal prefixes in increasing order; index `i` means a factor of `1024^i`.
const PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];

fn unit_factor(unit: &str) -> Option<f64> {
    let prefix = unit
        .strip_suffix("iB")
        .filter(|p| !p.is_empty())
        .or_else(|| unit.strip_suffix('B'))?;
    let exponent = PREFIXES.iter().position(|p| *p == prefix)?;
    Some(1024f64.powi(i32::try_from(exponent).ok()?))
}

/// Parses a Prometheus `<size>` such as `512MB` into bytes.
///
/// ```
/// assert_eq!(ember_config::parse_size("512MB"), Ok(512 * 1024 * 1024));
/// assert!(ember_config::parse_size("512").is_err()); // a unit is required
/// ```
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let invalid = || SizeError::Invalid(input.to_owned());
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        // Go's grammar is `[0-9]*(\.[0-9]*)?` with at least one digit somewhere.
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = if let Some(whole) = number.strip_suffix('.') {
            whole.parse()
        } else if number.starts_with('.') {
            format!("0{number}").parse()
        } else {
            number.parse()
        }
        .map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let factor = unit_factor(unit).ok_or_else(|| SizeError::UnknownUnit {
            unit: unit.to_owned(),
            input: input.to_owned(),
        })?;
        total += value * factor;
    }
    if negative && total != 0.0 {
        return Err(SizeError::Negative(input.to_owned()));
    }
    // i64::MAX as f64 rounds up to 2^63, so `>=` is the exact overflow test.
    if !total.is_finite() || total >= i64::MAX as f64 {
        return Err(SizeError::OutOfRange(input.to_owned()));
    }
    // Truncation toward zero matches Go's `int64(f)` conversion.
    Ok(total as u64)
}

/// Formats a byte count the way Prometheus prints a `<size>`: `512MiB`, `1KiB512B`, `0B`.
///
/// ```
/// assert_eq!(ember_config::format_size(512 * 1024 * 1024), "512MiB");
/// ```
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".to_owned();
    }
    let mut terms: Vec<String> = Vec::new();
    let mut remaining = bytes;
    for prefix in PREFIXES {
        let term = remaining % 1024;
        if term != 0 {
            let suffix = if prefix.is_empty() { "B" } else { "iB" };
            terms.push(format!("{term}{prefix}{suffix}"));
        }
        remaining /= 1024;
        if remaining == 0 {
            break;
        }
    }
    terms.reverse();
    terms.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn parses_every_unit_in_powers_of_two() {
        let cases = [
            ("0", 0),
            ("0B", 0),
            ("100B", 100),
            ("1KB", KIB),
            ("512MB", 512 * MIB),
            ("2GB", 2 * GIB),
            ("1TB", 1024 * GIB),
            ("1PB", 1024 * 1024 * GIB),
            ("1EB", 1024 * 1024 * 1024 * GIB),
            ("1MiB", MIB),
            ("1GB512MB", GIB + 512 * MIB),
            ("1.5KB", 1536),
            (".5KB", 512),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn requires_a_known_unit() {
        assert!(
            matches!(parse_size("512"), Err(SizeError::UnknownUnit { unit, .. }) if unit.is_empty())
        );
        assert!(matches!(
            parse_size("5mb"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("5ZB"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("5iB"),
            Err(SizeError::UnknownUnit { .. })
        ));
        for bad in ["", "MB", "1..5MB", " 1MB", "."] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_negative_and_huge_sizes() {
        assert_eq!(
            parse_size("-1MB"),
            Err(SizeError::Negative("-1MB".to_owned()))
        );
        assert_eq!(
            parse_size("8EB"),
            Err(SizeError::OutOfRange("8EB".to_owned()))
        );
        assert!(parse_size("7EB").is_ok());
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(100), "100B");
        assert_eq!(format_size(512 * MIB), "512MiB");
        assert_eq!(format_size(KIB + 512), "1KiB512B");
        for bytes in [1, KIB, 3 * GIB + 7, 512 * MIB] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
    }
}

//! Property tests: every regex fast path of `Matcher` agrees with the plain
//! anchored regex (`^(?s:pattern)$`) compiled by the `regex` crate.

use ember_model::matcher::{MatchOp, Matcher};
use proptest::prelude::*;

/// Characters chosen to stress the fast paths: ASCII letters with
/// non-ASCII case folds (`k` ~ KELVIN SIGN, `s` ~ LONG S), a multi-byte
/// letter, a regex metacharacter and a newline.
const ALPHABET: &str = "[abkKsS\u{212A}\u{17F}é.\n]";

fn literal() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{ALPHABET}{{0,3}}")).expect("valid strategy regex")
}

fn haystack_noise() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{ALPHABET}{{0,3}}")).expect("valid strategy regex")
}

/// A pattern of the shapes the matcher optimises, with the literals it is
/// made of (to build haystacks that hit).
fn pattern() -> impl Strategy<Value = (String, Vec<String>)> {
    let wildcard = prop_oneof![Just(""), Just(".*"), Just(".+"), Just(".*?")];
    (
        any::<bool>(),
        wildcard.clone(),
        proptest::collection::vec(literal(), 1..4),
        any::<bool>(),
        wildcard,
        0..3u8,
    )
        .prop_map(
            |(case_insensitive, lead, literals, capture, trail, extra)| {
                let alternation = literals
                    .iter()
                    .map(|l| regex::escape(l))
                    .collect::<Vec<_>>()
                    .join("|");
                // Small bounded extras exercise classes and repetitions.
                let extra = match extra {
                    0 => "",
                    1 => "[ab]",
                    _ => "(?:k)?",
                };
                let group = if capture { "(" } else { "(?:" };
                let flags = if case_insensitive { "(?i)" } else { "" };
                (
                    format!("{flags}{lead}{group}{alternation}){extra}{trail}"),
                    literals,
                )
            },
        )
}

fn reference(pattern: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?s:{pattern})$")).expect("reference regex compiles")
}

fn check(pattern: &str, haystacks: &[String]) -> Result<(), TestCaseError> {
    let matcher = Matcher::new(MatchOp::Regex, "l", pattern).expect("matcher compiles");
    let negated = Matcher::new(MatchOp::NotRegex, "l", pattern).expect("matcher compiles");
    let reference = reference(pattern);
    for haystack in haystacks {
        let expected = reference.is_match(haystack);
        prop_assert_eq!(
            matcher.matches(haystack),
            expected,
            "pattern {:?} on {:?}",
            pattern,
            haystack
        );
        prop_assert_eq!(negated.matches(haystack), !expected);
    }
    prop_assert_eq!(matcher.matches_empty(), reference.is_match(""));
    if let Some(set) = matcher.set_matches() {
        // The set is exactly the language: every member matches...
        for value in set {
            prop_assert!(
                reference.is_match(value),
                "{:?} in set of {:?}",
                value,
                pattern
            );
        }
        // ...and a matching haystack is a member.
        for haystack in haystacks {
            prop_assert_eq!(
                set.binary_search(haystack).is_ok(),
                reference.is_match(haystack)
            );
        }
    }
    if let Some(prefixes) = matcher.prefixes() {
        for haystack in haystacks {
            if reference.is_match(haystack) {
                prop_assert!(prefixes.iter().any(|p| haystack.starts_with(p.as_str())));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn fast_paths_agree_with_the_regex(
        (pattern, literals) in pattern(),
        noise in proptest::collection::vec(haystack_noise(), 6),
        pick in any::<proptest::sample::Index>(),
        upper in any::<bool>(),
    ) {
        let chosen = &literals[pick.index(literals.len())];
        let chosen = if upper { chosen.to_uppercase() } else { chosen.clone() };
        let mut haystacks = vec![
            chosen.clone(),
            format!("{}{chosen}", noise[0]),
            format!("{chosen}{}", noise[1]),
            format!("{}{chosen}{}", noise[2], noise[3]),
            format!("{chosen}{chosen}"),
            String::new(),
        ];
        haystacks.extend(noise);
        check(&pattern, &haystacks)?;
    }

    #[test]
    fn arbitrary_small_patterns_agree(
        pattern in "[ab.*+?|()\\[\\]^$kdswDSWB\\\\]{0,8}",
        haystacks in proptest::collection::vec("[abk.\n0-9 _]{0,6}", 8),
    ) {
        // The alphabet makes `\d`, `\s`, `\w`, `\b` and their negations
        // likely; on ASCII haystacks RE2's ASCII classes and the regex
        // crate's Unicode ones agree, so the reference still applies.
        // Whatever the text, the matcher either rejects it like the regex
        // crate does or matches like it.
        let parsed = regex_syntax::Parser::new().parse(&pattern);
        match Matcher::new(MatchOp::Regex, "l", &pattern) {
            Ok(_) => {
                prop_assert!(parsed.is_ok());
                check(&pattern, &haystacks)?;
            }
            Err(_) => prop_assert!(parsed.is_err() || regex::Regex::new(&pattern).is_err()),
        }
    }
}

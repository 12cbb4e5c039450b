//! Whatever the bytes, the exposition parsers end with an entry stream or
//! an error: no panic, no endless loop.

use ember_model::exposition::{
    Entry, OpenMetricsOptions, OpenMetricsParser, ParseError, ProtobufParser, TextParser,
};
use proptest::prelude::*;

const VALID_OPENMETRICS: &str = "# TYPE a histogram\n# HELP a x\\ny\n# UNIT a \n\
a_bucket{le=\"1.0\",b=\"c\\\"d\"} 0 1.5 # {t=\"x\"} 0.5 1\n\
a_bucket{le=\"+Inf\",b=\"c\\\"d\"} 3 1.5\na_count{b=\"c\\\"d\"} 3 1.5\na_sum{b=\"c\\\"d\"} 2 1.5\n\
a_created{b=\"c\\\"d\"} 1 1.5\n# TYPE s stateset\ns{s=\"on\"} 1\n\
{\"u.tf8\",\"l.x\"=\"\u{2603}\"} NaN\n# EOF\n";

/// Drives `next` to the end; panics (failing the property) if the parser
/// keeps producing entries far beyond what the input could hold.
fn drain(len: usize, mut next: impl FnMut() -> Result<bool, ParseError>) {
    let limit = 4 * len + 16;
    for _ in 0..limit {
        match next() {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
    }
    panic!("no end after {limit} entries for {len} bytes of input");
}

fn not_eof(e: Entry<'_>) -> bool {
    !matches!(e, Entry::EndOfFile)
}

fn run_all(input: &[u8]) {
    let mut text = TextParser::new(input);
    drain(input.len(), || text.next_entry().map(not_eof));
    for options in [
        OpenMetricsOptions::default(),
        OpenMetricsOptions::prometheus_compatible(),
    ] {
        let options = OpenMetricsOptions {
            created_timestamps: true,
            ..options
        };
        let mut om = OpenMetricsParser::with_options(input, options);
        drain(input.len(), || om.next_entry().map(not_eof));
    }
    let mut proto = ProtobufParser::new(input);
    drain(input.len(), || proto.next_entry().map(not_eof));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        run_all(&input);
    }

    #[test]
    fn mutated_exposition(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        let mut input = VALID_OPENMETRICS.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(input.len() + 1);
            match op {
                0 if i < input.len() => input[i] = byte,
                1 => input.insert(i, byte),
                _ if i < input.len() => {
                    input.remove(i);
                }
                _ => input.push(byte),
            }
        }
        run_all(&input);
    }
}

#[test]
fn the_unmutated_seed_is_valid() {
    let input = VALID_OPENMETRICS.as_bytes();
    let mut p = OpenMetricsParser::with_options(
        input,
        OpenMetricsOptions {
            created_timestamps: true,
            ..OpenMetricsOptions::default()
        },
    );
    let mut series = 0;
    loop {
        match p.next_entry() {
            Ok(Entry::Series(_)) => series += 1,
            Ok(Entry::EndOfFile) => break,
            Ok(_) => {}
            Err(e) => panic!("seed must parse: {e}"),
        }
    }
    assert_eq!(series, 7);
}

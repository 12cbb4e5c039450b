//! Exposition parser throughput on Prometheus's real-world expositions
//! (`../shared/conformance/exposition`), reported in bytes per second.
//!
//! Each iteration parses a whole file and touches every sample's name,
//! labels and value, as a scrape loop would. Skipped, with a message, when
//! the data is not present.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_model::exposition::{
    Entry, OpenMetricsOptions, OpenMetricsParser, ParseError, TextParser,
};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/exposition"
);

/// Consumes one entry the way a scrape loop would; returns false at the end.
fn consume(entry: Entry<'_>, acc: &mut (usize, f64)) -> bool {
    match entry {
        Entry::Series(s) => {
            acc.0 += s.name.len() + s.raw.len();
            for (name, value) in s.labels.iter() {
                acc.0 += name.len() + value.len();
            }
            acc.1 += s.value;
            true
        }
        Entry::EndOfFile => false,
        _ => true,
    }
}

fn parse_text(input: &[u8]) -> Result<(usize, f64), ParseError> {
    let mut acc = (0, 0.0);
    let mut p = TextParser::new(input);
    while consume(p.next_entry()?, &mut acc) {}
    Ok(acc)
}

fn parse_openmetrics(
    input: &[u8],
    options: OpenMetricsOptions,
) -> Result<(usize, f64), ParseError> {
    let mut acc = (0, 0.0);
    let mut p = OpenMetricsParser::with_options(input, options);
    while consume(p.next_entry()?, &mut acc) {}
    Ok(acc)
}

fn exposition(c: &mut Criterion) {
    let dir = Path::new(DATA);
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: {} not found; no exposition benchmarks",
            dir.display()
        );
        return;
    }
    let mut group = c.benchmark_group("exposition");
    for file in [
        "alltypes.237mfs.prom.txt",
        "alltypes.237mfs.nometa.prom.txt",
    ] {
        let Ok(input) = std::fs::read(dir.join(file)) else {
            eprintln!("SKIPPED: {file} not readable");
            continue;
        };
        if parse_text(&input).is_err() {
            eprintln!("SKIPPED: {file} does not parse");
            continue;
        }
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(format!("text/{file}"), |b| {
            b.iter(|| parse_text(black_box(&input)).map(black_box))
        });
    }
    for file in ["alltypes.5mfs.om.txt", "1histogram.om.txt"] {
        let Ok(input) = std::fs::read(dir.join(file)) else {
            eprintln!("SKIPPED: {file} not readable");
            continue;
        };
        group.throughput(Throughput::Bytes(input.len() as u64));
        for (mode, options) in [
            ("strict", OpenMetricsOptions::default()),
            ("compatible", OpenMetricsOptions::prometheus_compatible()),
        ] {
            // The strict parser rightly rejects client_golang's negative
            // bucket histogram in the 5mfs file; benchmark only what parses.
            if parse_openmetrics(&input, options).is_err() {
                eprintln!("SKIPPED: openmetrics-{mode}/{file}: rejected in this mode");
                continue;
            }
            group.bench_function(format!("openmetrics-{mode}/{file}"), |b| {
                b.iter(|| parse_openmetrics(black_box(&input), options).map(black_box))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, exposition);
criterion_main!(benches);

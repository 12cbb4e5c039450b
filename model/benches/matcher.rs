//! Matcher hot paths: each fast-path shape against the plain anchored
//! regex it replaces, on a matching and a non-matching value.
//!
//! `cargo bench -p ember-model --bench matcher`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ember_model::matcher::{MatchOp, Matcher};

const CASES: [(&str, &str, &str); 9] = [
    ("literal", "node", "nodes"),
    ("set_3", "api|web|node", "db"),
    ("set_ci", "(?i)get", "POST"),
    ("prefix", "/var/lib/.*", "/usr/lib/x"),
    ("suffix", ".*_total", "http_requests_seconds"),
    ("contains", ".*docker.*", "/var/lib/containerd/overlay"),
    ("any", ".*", "anything"),
    ("non_empty", ".+", ""),
    ("regex_fallback", "[a-z]+-[0-9]+", "web-abc"),
];

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("matcher");
    for (name, pattern, miss) in CASES {
        let matcher = Matcher::new(MatchOp::Regex, "l", pattern).expect("valid");
        let regex = regex::Regex::new(&format!("^(?s:{pattern})$")).expect("valid");
        let hit = match name {
            "literal" => "node",
            "set_3" => "node",
            "set_ci" => "GeT",
            "prefix" => "/var/lib/docker",
            "suffix" => "http_requests_total",
            "contains" => "/var/lib/docker/overlay2",
            "any" | "non_empty" => "anything",
            _ => "web-123",
        };
        assert!(matcher.matches(hit) && regex.is_match(hit), "{name}");
        for (outcome, value) in [("hit", hit), ("miss", miss)] {
            group.bench_function(format!("{name}/{outcome}/fast"), |b| {
                b.iter(|| black_box(&matcher).matches(black_box(value)))
            });
            group.bench_function(format!("{name}/{outcome}/regex"), |b| {
                b.iter(|| black_box(&regex).is_match(black_box(value)))
            });
        }
    }
    group.finish();
}

fn construction(c: &mut Criterion) {
    let mut group = c.benchmark_group("matcher/new");
    group.bench_function("set_3", |b| {
        b.iter(|| Matcher::new(MatchOp::Regex, "l", black_box("api|web|node")))
    });
    group.bench_function("regex_fallback", |b| {
        b.iter(|| Matcher::new(MatchOp::Regex, "l", black_box("[a-z]+-[0-9]+")))
    });
    group.finish();
}

criterion_group!(benches, matching, construction);
criterion_main!(benches);

//! The parsers allocate per exposition (buffers that grow to the largest
//! line) and, in strict OpenMetrics mode, per metric family, but never per
//! sample. A counting global allocator checks that claim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ember_model::exposition::{Entry, OpenMetricsOptions, OpenMetricsParser, TextParser};

struct Counting;

thread_local! {
    // Per thread, because the test harness runs tests in parallel. The
    // const initializer means reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A large exposition: `families` counters of `per_family` series each,
/// some label values with escapes.
fn synthetic(families: usize, per_family: usize, openmetrics: bool) -> String {
    let mut out = String::new();
    for f in 0..families {
        let family = format!("family_{f}");
        out.push_str(&format!("# HELP {family} Help text for family {f}.\n"));
        out.push_str(&format!("# TYPE {family} counter\n"));
        for i in 0..per_family {
            let path = if i % 7 == 0 {
                format!("/a\\\"{i}\\\\")
            } else {
                format!("/api/v1/{i}")
            };
            let name = if openmetrics {
                format!("{family}_total")
            } else {
                family.clone()
            };
            out.push_str(&format!(
                "{name}{{instance=\"host-{i}:9100\",job=\"node\",path=\"{path}\"}} {}.5\n",
                i * 3
            ));
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn count_allocations(f: impl FnOnce() -> usize) -> (usize, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let samples = f();
    (ALLOCATIONS.with(Cell::get) - before, samples)
}

#[test]
fn text_parser_does_not_allocate_per_sample() {
    let input = synthetic(20, 1000, false);
    let (allocations, samples) = count_allocations(|| {
        let mut p = TextParser::new(input.as_bytes());
        let mut samples = 0;
        loop {
            match p.next_entry().expect("valid") {
                Entry::Series(s) => {
                    samples += 1;
                    assert_eq!(s.labels.len(), 3);
                }
                Entry::EndOfFile => break,
                _ => {}
            }
        }
        samples
    });
    assert_eq!(samples, 20_000);
    assert!(
        allocations < 32,
        "{allocations} allocations for {samples} samples"
    );
}

#[test]
fn strict_openmetrics_parser_allocates_per_family_not_per_sample() {
    let input = synthetic(20, 1000, true);
    for options in [
        OpenMetricsOptions::default(),
        OpenMetricsOptions::prometheus_compatible(),
    ] {
        let (allocations, samples) = count_allocations(|| {
            let mut p = OpenMetricsParser::with_options(input.as_bytes(), options);
            let mut samples = 0;
            loop {
                match p.next_entry().expect("valid") {
                    Entry::Series(_) => samples += 1,
                    Entry::EndOfFile => break,
                    _ => {}
                }
            }
            samples
        });
        assert_eq!(samples, 20_000);
        // Buffer growth (logarithmic in the largest family) plus a few
        // allocations per family for the set of names in use.
        assert!(
            allocations < 200,
            "{options:?}: {allocations} allocations for {samples} samples"
        );
    }
}

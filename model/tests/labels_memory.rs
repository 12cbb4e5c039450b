//! Measures what a `Labels` costs in memory with a counting allocator, for
//! a typical node_exporter series of 8 labels, and checks the
//! one-allocation-per-series design holds.
//!
//! Run with `cargo test -p ember-model --test labels_memory -- --nocapture`
//! to see the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ember_model::labels::{Labels, LabelsBuilder};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        LIVE_BYTES.fetch_add(layout.size(), Ordering::SeqCst);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const NODE_SERIES: [(&str, &str); 8] = [
    ("__name__", "node_filesystem_avail_bytes"),
    ("device", "/dev/nvme0n1p2"),
    ("env", "production"),
    ("fstype", "ext4"),
    ("instance", "node-17.prod.example.com:9100"),
    ("job", "node"),
    ("mountpoint", "/var/lib/docker"),
    ("region", "eu-west-1"),
];

/// Allocations and net live bytes of running `f`, keeping its result alive.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    let live = LIVE_BYTES.load(Ordering::SeqCst);
    let value = f();
    (
        value,
        ALLOCATIONS.load(Ordering::SeqCst) - allocations,
        LIVE_BYTES.load(Ordering::SeqCst) - live,
    )
}

// One test function only: the counters are process-wide and the test
// harness runs test functions on parallel threads.
#[test]
fn one_allocation_per_series_and_its_size() {
    let payload: usize = NODE_SERIES.iter().map(|(n, v)| n.len() + v.len()).sum();

    // `Labels::new` makes a temporary vector for sorting; what stays alive
    // is one buffer.
    let (labels, _, live) = measure(|| Labels::new(NODE_SERIES).expect("valid"));
    let inline = std::mem::size_of::<Labels>();
    assert_eq!(
        live,
        labels.heap_size(),
        "heap_size() reports the live bytes"
    );
    // Header (count, lengths size: 2 bytes), 16 one-byte lengths, 16
    // separators and 16 bytes of reference counts, padded to 8 bytes.
    assert_eq!(live, (payload + 2 + 16 + 16 + 16).next_multiple_of(8));
    eprintln!(
        "Labels, 8-label node_exporter series: {payload} bytes of names and values; \
         {live} heap bytes in one allocation (+{inline} inline) = {} bytes per series",
        live + inline
    );

    // Cloning shares the buffer.
    let (_clone, allocations, _) = measure(|| labels.clone());
    assert_eq!(allocations, 0, "clone does not allocate");

    // Lookups, iteration, hashing and display-free comparisons don't
    // allocate either. (Subset hashes stage their input in a per-thread
    // buffer, allocated by the first call on a thread.)
    labels.hash_for_labels(&["job", "instance"]);
    let (_, allocations, _) = measure(|| {
        (
            labels.get("mountpoint"),
            labels.iter().count(),
            labels.hash(),
            labels.hash_for_labels(&["job", "instance"]),
            labels == labels.clone(),
        )
    });
    assert_eq!(allocations, 0, "reads do not allocate");

    // The builder's result is one allocation too (plus its temporaries,
    // which are freed).
    let mut builder = LabelsBuilder::new(labels.clone());
    builder.set("env", "staging");
    let (built, _, live) = measure(|| builder.labels());
    assert_eq!(live, built.heap_size());

    // For comparison: the naive `Vec<(String, String)>` representation.
    let (naive, allocations, live) = measure(|| {
        NODE_SERIES
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    });
    eprintln!(
        "Vec<(String, String)> of the same series: {allocations} allocations, {} bytes",
        live + std::mem::size_of_val(&naive)
    );
    assert!(allocations > 1);
}

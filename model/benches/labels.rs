//! Label-set hot paths: building (scrape, relabeling), hashing (series
//! lookup, sharding, PromQL grouping), lookups and comparison.
//!
//! `cargo bench -p ember-model --bench labels`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ember_model::labels::{Labels, LabelsBuilder};

/// A typical node_exporter series with target labels: 8 labels.
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

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("labels/build");
    group.bench_function("new_8_sorted", |b| {
        b.iter(|| Labels::new(black_box(NODE_SERIES)))
    });
    let mut shuffled = NODE_SERIES;
    shuffled.reverse();
    group.bench_function("new_8_reversed", |b| {
        b.iter(|| Labels::new(black_box(shuffled)))
    });
    let base = Labels::new(NODE_SERIES[..6].iter().copied()).expect("valid");
    let mut builder = LabelsBuilder::default();
    group.bench_function("builder_reset_set2_labels", |b| {
        b.iter(|| {
            builder.reset(black_box(base.clone()));
            builder.set("mountpoint", "/var/lib/docker");
            builder.set("region", "eu-west-1");
            builder.labels()
        })
    });
    group.finish();
}

fn hash(c: &mut Criterion) {
    let labels = Labels::new(NODE_SERIES).expect("valid");
    let mut group = c.benchmark_group("labels/hash");
    group.bench_function("hash_8", |b| b.iter(|| black_box(&labels).hash()));
    group.bench_function("hash_for_labels_2", |b| {
        b.iter(|| black_box(&labels).hash_for_labels(&["instance", "job"]))
    });
    group.bench_function("hash_without_labels_1", |b| {
        b.iter(|| black_box(&labels).hash_without_labels(&["instance"]))
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let labels = Labels::new(NODE_SERIES).expect("valid");
    let same = Labels::new(NODE_SERIES).expect("valid");
    let mut group = c.benchmark_group("labels/read");
    group.bench_function("get_first", |b| {
        b.iter(|| black_box(&labels).get(black_box("__name__")))
    });
    group.bench_function("get_last", |b| {
        b.iter(|| black_box(&labels).get(black_box("region")))
    });
    group.bench_function("get_absent", |b| {
        b.iter(|| black_box(&labels).get(black_box("pod")))
    });
    group.bench_function("iter_8", |b| {
        b.iter(|| {
            black_box(&labels)
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
        })
    });
    group.bench_function("eq_8", |b| {
        b.iter(|| black_box(&labels) == black_box(&same))
    });
    group.bench_function("cmp_8_equal", |b| {
        b.iter(|| black_box(&labels).cmp(black_box(&same)))
    });
    let mut differing = NODE_SERIES;
    differing[6].1 = "/var/lib/kubelet";
    let differing = Labels::new(differing).expect("valid");
    group.bench_function("cmp_8_differ_at_7th", |b| {
        b.iter(|| black_box(&labels).cmp(black_box(&differing)))
    });
    group.bench_function("clone", |b| b.iter(|| black_box(&labels).clone()));
    group.finish();
}

criterion_group!(benches, build, hash, read);
criterion_main!(benches);

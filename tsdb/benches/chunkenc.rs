//! Chunk encoding benchmarks: compressed size and speed.
//!
//! Run with `cargo bench -p ember-tsdb --bench chunkenc`. Before the timing
//! runs it prints bytes per sample for two generated data sets, for Ember's
//! `XorChunk` and for a faithful re-implementation of Prometheus's XOR chunk
//! (size only), 120 samples per chunk:
//!
//! - **node**: node_exporter-like series scraped every 15 s with a few
//!   milliseconds of timestamp jitter (and an occasional late scrape), in the
//!   proportions a node_exporter target has: constant series, rarely
//!   incrementing error counters, integer rate counters, two-decimal CPU
//!   seconds counters, memory gauges in kB * 1024, load averages and
//!   temperatures, and a few arbitrary floats (GC quantiles, computed ratios).
//! - **random walk**: `v += N(0, 1)` at full float precision, regular 15 s
//!   timestamps, the synthetic data Prometheus's 2.7 bytes/sample refers to.
//!
//! Data is generated from a fixed seed, so the figures are reproducible.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ember_tsdb::chunkenc::XorChunk;

const SAMPLES_PER_CHUNK: usize = 120;
const CHUNKS_PER_SERIES: usize = 8;
const SERIES: usize = 500;

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Approximately standard normal (Irwin-Hall with 12 terms).
    fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }

    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.uniform() * (hi.ln() - lo.ln())).exp()
    }
}

type Series = Vec<(i64, f64)>;

/// Scrape timestamps: a 15 s grid, jitter with a standard deviation of about
/// 2 ms (unless `aligned`, as when the scraper snaps timestamps within a
/// tolerance to the grid, like Prometheus's `scrape.timestamp-tolerance`),
/// and one scrape in 200 late by 20 to 200 ms.
fn scrape_timestamps(rng: &mut Rng, n: usize, aligned: bool) -> Vec<i64> {
    let start = 1_700_000_000_000 + (rng.next_u64() % 15_000) as i64;
    (0..n)
        .map(|i| {
            let noise = (rng.gauss() * 2.0).round() as i64;
            let mut jitter = if aligned { 0 } else { noise };
            if rng.chance(0.005) {
                jitter += 20 + (rng.next_u64() % 180) as i64;
            }
            start + i as i64 * 15_000 + jitter
        })
        .collect()
}

fn node_series(rng: &mut Rng, class: usize, n: usize, aligned: bool) -> Series {
    let ts = scrape_timestamps(rng, n, aligned);
    let mut values = Vec::with_capacity(n);
    match class {
        // Constant: info metrics, sizes, MTUs, zero error counters.
        0 => {
            let v = match rng.next_u64() % 4 {
                0 => 0.0,
                1 => 1.0,
                2 => 1500.0,
                _ => ((rng.next_u64() % 1_000_000) * 4096) as f64,
            };
            values.resize(n, v);
        }
        // Error and drop counters: +1 now and then.
        1 => {
            let mut v = (rng.next_u64() % 100) as f64;
            for _ in 0..n {
                if rng.chance(0.01) {
                    v += 1.0;
                }
                values.push(v);
            }
        }
        // Packets, bytes, context switches, interrupts: bursty integer rates.
        2 => {
            let rate = rng.log_uniform(1.0, 1e6);
            let mut v = (rng.next_u64() % (1 << 40)) as f64;
            for _ in 0..n {
                v += (rate * 15.0 * (0.3 * rng.gauss()).exp()).round();
                values.push(v);
            }
        }
        // CPU seconds: two decimals, steady.
        3 => {
            let rate = rng.log_uniform(0.001, 1.0);
            let mut hundredths = rng.next_u64() % 100_000_000;
            for _ in 0..n {
                let inc = rate * 1500.0 * (1.0 + 0.1 * rng.gauss());
                hundredths += inc.max(0.0).round() as u64;
                values.push(hundredths as f64 / 100.0);
            }
        }
        // Memory gauges: kB from /proc/meminfo times 1024, moving most scrapes.
        4 => {
            let mut kb = rng.log_uniform(1e4, 1e7).round();
            let step = rng.log_uniform(1.0, 1e4);
            for _ in 0..n {
                if rng.chance(0.7) {
                    kb = (kb + (rng.gauss() * step).round()).max(0.0);
                }
                values.push(kb * 1024.0);
            }
        }
        // Load averages (two decimals, smooth) or temperatures (whole degrees).
        5 => {
            if rng.chance(0.5) {
                let mut load = rng.uniform() * 4.0;
                for _ in 0..n {
                    load = (load * 0.92 + 0.08 * (load + rng.gauss())).max(0.0);
                    values.push((load * 100.0).round() / 100.0);
                }
            } else {
                let mut temp = 35.0 + (rng.next_u64() % 30) as f64;
                for _ in 0..n {
                    if rng.chance(0.1) {
                        temp += if rng.chance(0.5) { 1.0 } else { -1.0 };
                    }
                    values.push(temp);
                }
            }
        }
        // Arbitrary floats: GC duration quantiles and computed ratios.
        _ => {
            if rng.chance(0.5) {
                for _ in 0..n {
                    let digits = 10_000 + rng.next_u64() % 90_000;
                    values.push(digits as f64 / 1e9);
                }
            } else {
                let mut a = 1.0 + rng.uniform();
                for _ in 0..n {
                    a += rng.uniform();
                    values.push(a / 3.0);
                }
            }
        }
    }
    ts.into_iter().zip(values).collect()
}

/// Shares of series per class, in the order of `node_series`.
const NODE_MIX: [(usize, f64, &str); 7] = [
    (0, 0.35, "constant"),
    (1, 0.15, "rare counter"),
    (2, 0.15, "integer rate counter"),
    (3, 0.10, "cpu seconds (2 decimals)"),
    (4, 0.15, "memory gauge"),
    (5, 0.05, "load / temperature"),
    (6, 0.05, "arbitrary float"),
];

fn node_data(aligned: bool) -> Vec<(usize, Series)> {
    let mut rng = Rng(42);
    let n = SAMPLES_PER_CHUNK * CHUNKS_PER_SERIES;
    let mut out = Vec::new();
    for &(class, share, _) in &NODE_MIX {
        for _ in 0..(share * SERIES as f64).round() as usize {
            out.push((class, node_series(&mut rng, class, n, aligned)));
        }
    }
    out
}

fn random_walk_data() -> Vec<Series> {
    let mut rng = Rng(7);
    let n = SAMPLES_PER_CHUNK * CHUNKS_PER_SERIES;
    (0..SERIES)
        .map(|_| {
            let mut v = rng.uniform() * 100.0;
            (0..n)
                .map(|i| {
                    v += rng.gauss();
                    (1_700_000_000_000 + i as i64 * 15_000, v)
                })
                .collect()
        })
        .collect()
}

fn ember_chunks(series: &[(i64, f64)]) -> Vec<XorChunk> {
    series
        .chunks(SAMPLES_PER_CHUNK)
        .map(|samples| {
            let mut chunk = XorChunk::new();
            for &(t, v) in samples {
                chunk.append(t, v).expect("room for 120 samples");
            }
            chunk
        })
        .collect()
}

fn ember_size(series: &[(i64, f64)]) -> usize {
    ember_chunks(series).iter().map(|c| c.bytes().len()).sum()
}

/// Prometheus's XOR chunk (tsdb/chunkenc/xor.go), re-implemented for its size.
mod prometheus_xor {
    #[derive(Default)]
    struct Bits {
        bits: usize,
    }

    impl Bits {
        fn add(&mut self, n: u32) {
            self.bits += n as usize;
        }

        fn uvarint(&mut self, mut v: u64) {
            loop {
                self.add(8);
                v >>= 7;
                if v == 0 {
                    return;
                }
            }
        }

        fn varint(&mut self, v: i64) {
            self.uvarint(((v << 1) ^ (v >> 63)) as u64);
        }
    }

    pub fn chunk_size(samples: &[(i64, f64)]) -> usize {
        let mut b = Bits::default();
        b.add(16);
        let (mut t_prev, mut delta_prev, mut v_prev) = (0i64, 0i64, 0u64);
        let (mut lead, mut trail) = (0xffu32, 0u32);
        for (i, &(t, v)) in samples.iter().enumerate() {
            let bits = v.to_bits();
            match i {
                0 => {
                    b.varint(t);
                    b.add(64);
                }
                _ => {
                    let delta = t - t_prev;
                    if i == 1 {
                        b.uvarint(delta as u64);
                    } else {
                        let dod = delta - delta_prev;
                        b.add(match dod {
                            0 => 1,
                            -8191..=8192 => 2 + 14,
                            -65535..=65536 => 3 + 17,
                            -524_287..=524_288 => 4 + 20,
                            _ => 4 + 64,
                        });
                    }
                    delta_prev = delta;
                    let xor = bits ^ v_prev;
                    if xor == 0 {
                        b.add(1);
                    } else {
                        let l = xor.leading_zeros().min(31);
                        let tr = xor.trailing_zeros();
                        if lead != 0xff && l >= lead && tr >= trail {
                            b.add(2 + 64 - lead - trail);
                        } else {
                            lead = l;
                            trail = tr;
                            b.add(2 + 5 + 6 + 64 - l - tr);
                        }
                    }
                }
            }
            t_prev = t;
            v_prev = bits;
        }
        b.bits.div_ceil(8)
    }
}

fn prometheus_size(series: &[(i64, f64)]) -> usize {
    series
        .chunks(SAMPLES_PER_CHUNK)
        .map(prometheus_xor::chunk_size)
        .sum()
}

fn report_sizes() {
    let node = node_data(false);
    println!("bytes per sample, chunks of {SAMPLES_PER_CHUNK} samples ({SERIES} series)");
    println!("{:<28} {:>10} {:>12}", "data set", "ember", "prometheus");
    let (mut ember_total, mut prom_total, mut samples_total) = (0, 0, 0);
    for &(class, _, name) in &NODE_MIX {
        let (mut e, mut p, mut n) = (0, 0, 0);
        for (_, series) in node.iter().filter(|(c, _)| *c == class) {
            e += ember_size(series);
            p += prometheus_size(series);
            n += series.len();
        }
        println!(
            "  node: {name:<22} {:>10.3} {:>12.3}",
            e as f64 / n as f64,
            p as f64 / n as f64
        );
        ember_total += e;
        prom_total += p;
        samples_total += n;
    }
    println!(
        "{:<28} {:>10.3} {:>12.3}",
        "node (all)",
        ember_total as f64 / samples_total as f64,
        prom_total as f64 / samples_total as f64
    );
    let aligned = node_data(true);
    let n: usize = aligned.iter().map(|(_, s)| s.len()).sum();
    let e: usize = aligned.iter().map(|(_, s)| ember_size(s)).sum();
    let p: usize = aligned.iter().map(|(_, s)| prometheus_size(s)).sum();
    println!(
        "{:<28} {:>10.3} {:>12.3}",
        "node (all), aligned ts",
        e as f64 / n as f64,
        p as f64 / n as f64
    );
    let walk = random_walk_data();
    let n: usize = walk.iter().map(Vec::len).sum();
    let e: usize = walk.iter().map(|s| ember_size(s)).sum();
    let p: usize = walk.iter().map(|s| prometheus_size(s)).sum();
    println!(
        "{:<28} {:>10.3} {:>12.3}",
        "random walk",
        e as f64 / n as f64,
        p as f64 / n as f64
    );
}

fn bench_chunks(c: &mut Criterion) {
    let node: Vec<Series> = node_data(false)
        .into_iter()
        .map(|(_, s)| s)
        .take(100)
        .collect();
    let walk: Vec<Series> = random_walk_data().into_iter().take(100).collect();
    for (name, data) in [("node", &node), ("random_walk", &walk)] {
        let samples: usize = data.iter().map(Vec::len).sum();
        let mut group = c.benchmark_group("xor_chunk");
        group.throughput(Throughput::Elements(samples as u64));
        group.bench_with_input(BenchmarkId::new("append", name), data, |b, data| {
            b.iter(|| {
                let mut bytes = 0;
                for series in data {
                    bytes += ember_size(black_box(series));
                }
                bytes
            })
        });
        let chunks: Vec<XorChunk> = data.iter().flat_map(|s| ember_chunks(s)).collect();
        group.bench_with_input(BenchmarkId::new("iterate", name), &chunks, |b, chunks| {
            b.iter(|| {
                let mut sum = 0.0;
                for chunk in chunks {
                    let mut it = chunk.iter();
                    while it.next() {
                        sum += it.at().1;
                    }
                }
                sum
            })
        });
        group.finish();
    }
}

fn main() {
    report_sizes();
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    bench_chunks(&mut criterion);
    criterion.final_summary();
}

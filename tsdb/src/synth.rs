//! Synthetic, reproducible time-series data for benchmarks and tool tests.
//!
//! The storage targets are stated for *realistic* data, so the data has to
//! look like what a real server stores. [`NodeFleet`] generates what a fleet
//! of hosts running node_exporter would be scraped into: the metric names and
//! label sets of node_exporter's default collectors (CPU, memory, disks,
//! file systems, network, pressure, the Go runtime, the exporter's own scrape
//! durations), with value models calibrated on a real node_exporter 1.5
//! scrape (see [`NodeFleet`] for the proportions). [`random_walk`] is the
//! plain synthetic set (`v += N(0, 1)` at full precision) that published
//! figures often use. [`write_openmetrics`] renders series as an OpenMetrics
//! file, the input of `ember tsdb create-blocks-from openmetrics` and of
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! Everything is derived from a seed with a small built-in generator, so the
//! same configuration gives the same bytes on every machine, and series are
//! generated one at a time ([`Fleet::series`]) so a large file needs no
//! more memory than one series.
//!
//! ```
//! use ember_tsdb::synth::{NodeFleet, TimestampStyle};
//!
//! let config = NodeFleet { hosts: 2, samples: 240, timestamps: TimestampStyle::Exact, ..NodeFleet::default() };
//! let fleet = config.build();
//! let series: Vec<_> = fleet.iter().collect();
//! assert!(series.len() > 500);
//! assert!(series.iter().all(|s| s.samples.len() == 240));
//! // Exact timestamps lie on the host's 15 s grid.
//! let t = &series[0].samples;
//! assert!(t.windows(2).all(|w| w[1].0 - w[0].0 == 15_000));
//! ```

use std::io::{self, Write};

/// SplitMix64: small, fast, deterministic and good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Approximately standard normal (Irwin-Hall with 12 terms).
    pub fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }

    /// Log-uniform in `[lo, hi)`.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.uniform() * (hi.ln() - lo.ln())).exp()
    }
}

/// One generated series: its labels (`__name__` first, then by name) and
/// samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Label pairs, `__name__` first, the rest sorted by name.
    pub labels: Vec<(String, String)>,
    /// The metric family this series belongs to (the name without a
    /// counter's `_total`), as written in `# TYPE`.
    pub family: String,
    /// `"counter"` or `"gauge"`.
    pub metric_type: &'static str,
    /// `(timestamp ms, value)`, ascending timestamps.
    pub samples: Vec<(i64, f64)>,
}

/// How scrape timestamps deviate from the ideal 15 s grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampStyle {
    /// What Prometheus 2.4x and Ember store: scheduling jitter with a
    /// standard deviation of 2 ms, snapped to the grid when within 2 ms of it
    /// (Prometheus's default timestamp tolerance), so about two scrapes in
    /// three land exactly on the grid; one in 200 is 20–200 ms late.
    Snapped,
    /// The same without snapping: every timestamp carries its jitter.
    Jittered,
    /// Exactly on the grid.
    Exact,
}

/// A fleet of node_exporter hosts scraped at a fixed interval.
///
/// Each host has 2–16 CPUs, 1–4 disks, 2–4 network interfaces and 2–5 file
/// systems, which gives 500–1,100 series per host. Series fall into these
/// value models, in proportions close to a real node_exporter 1.5 scrape of a
/// small Linux VM (measured: 67 % of its 507 series did not change within a
/// minute, 14 % were changing integers, 10 % arbitrary-looking decimals,
/// mostly the exporter's own collector durations):
///
/// - constants: info metrics, sizes and limits, interfaces that are down,
///   error counters that stay zero, collector success flags;
/// - rare counters: errors, drops, forks and GC counts that tick now and then;
/// - integer rate counters with ±30 % noise around a rate that follows the
///   host's slowly varying load (bytes, packets, context switches,
///   interrupts, page faults);
/// - CPU seconds with two decimals; disk busy seconds as milliseconds times
///   `0.001` and pressure stall seconds as microseconds `/ 1000 / 1000`
///   (node_exporter's own arithmetic, which produces values such as
///   `184.66400000000002`);
/// - memory gauges in kB × 1024, file system gauges in 4 KiB blocks, small
///   integer gauges (processes, sockets), load averages with two decimals,
///   temperatures;
/// - collector durations (`3.8757e-05`: nanoseconds / 1e9, effectively
///   random) and `node_time_seconds` at full float precision.
#[derive(Debug, Clone)]
pub struct NodeFleet {
    /// Number of hosts (the `instance` label).
    pub hosts: usize,
    /// Samples per series.
    pub samples: usize,
    /// Time of the first scrape's grid point, in ms.
    pub start_ms: i64,
    /// Scrape interval in ms.
    pub interval_ms: i64,
    /// How timestamps deviate from the grid.
    pub timestamps: TimestampStyle,
    /// Seed for everything.
    pub seed: u64,
}

/// A [`NodeFleet`]'s series list, ready to generate series from.
#[derive(Debug, Clone)]
pub struct Fleet {
    config: NodeFleet,
    specs: Vec<Spec>,
}

impl Default for NodeFleet {
    fn default() -> Self {
        Self {
            hosts: 10,
            samples: 480,
            start_ms: 1_700_000_000_000,
            interval_ms: 15_000,
            timestamps: TimestampStyle::Snapped,
            seed: 42,
        }
    }
}

/// How a series' values evolve. Integer state `c` is turned into the
/// sample value by a [`Unit`].
#[derive(Debug, Clone, Copy)]
enum Model {
    Const(f64),
    /// Each scrape, with probability `p`, `c += round(rate × load × e^(σ g))`.
    Counter {
        start: u64,
        rate: f64,
        noise: f64,
        p: f64,
        unit: Unit,
    },
    /// Each scrape, with probability `p`, `c += round(g × step)`, at least `min`.
    Gauge {
        start: i64,
        step: f64,
        p: f64,
        min: i64,
        unit: Unit,
    },
    /// A load average: exponential smoothing of a noisy run-queue length.
    Load {
        period: f64,
    },
    /// Nanoseconds / 1e9 around a median, log-normally spread.
    Duration {
        median_ns: f64,
    },
    /// Wall-clock seconds with nanoseconds, at full float precision.
    WallClock,
}

/// How an integer state becomes a value.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// The integer itself.
    One,
    /// Times a factor (1024 for kB, 4096 for pages and blocks, 1000 for kHz).
    Times(u32),
    /// Hundredths: `c / 100` (CPU seconds from USER_HZ ticks).
    Hundredths,
    /// Milliseconds as node_exporter's diskstats does it: `c * 0.001`.
    MillisTimes,
    /// Microseconds as node_exporter's pressure collector: `c / 1000 / 1000`.
    MicrosDivDiv,
    /// Thousandths: `c / 1000` (temperatures from millidegrees).
    Thousandths,
}

impl Unit {
    fn value(self, c: i64) -> f64 {
        match self {
            Unit::One => c as f64,
            Unit::Times(f) => (c * i64::from(f)) as f64,
            Unit::Hundredths => c as f64 / 100.0,
            Unit::MillisTimes => c as f64 * 0.001,
            Unit::MicrosDivDiv => c as f64 / 1000.0 / 1000.0,
            Unit::Thousandths => c as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Spec {
    host: usize,
    name: String,
    family: String,
    metric_type: &'static str,
    labels: Vec<(String, String)>,
    model: Model,
    seed: u64,
}

/// Collects the series of one host.
struct HostBuilder<'a> {
    host: usize,
    rng: &'a mut Rng,
    out: &'a mut Vec<Spec>,
}

impl HostBuilder<'_> {
    fn push(&mut self, name: &str, labels: &[(&str, &str)], model: Model) {
        let (family, metric_type) = match name.strip_suffix("_total") {
            Some(family) => (family.to_string(), "counter"),
            None => (name.to_string(), "gauge"),
        };
        let mut pairs: Vec<(String, String)> = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        pairs.push(("instance".into(), format!("host-{:04}:9100", self.host)));
        pairs.push(("job".into(), "node".into()));
        pairs.sort();
        let seed = self.rng.next_u64();
        self.out.push(Spec {
            host: self.host,
            name: name.to_string(),
            family,
            metric_type,
            labels: pairs,
            model,
            seed,
        });
    }

    fn constant(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, labels, Model::Const(v));
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)], rate: f64, p: f64, unit: Unit) {
        let start = self.rng.below(1 << 36) / (1 + self.rng.below(1 << 12));
        let noise = 0.3;
        self.push(
            name,
            labels,
            Model::Counter {
                start,
                rate,
                noise,
                p,
                unit,
            },
        );
    }

    fn gauge(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        start: i64,
        step: f64,
        p: f64,
        unit: Unit,
    ) {
        self.push(
            name,
            labels,
            Model::Gauge {
                start,
                step,
                p,
                min: 0,
                unit,
            },
        );
    }

    fn build(&mut self) {
        let cpus = [2, 4, 4, 8, 8, 16][self.rng.below(6) as usize];
        let disks = 1 + self.rng.below(4) as usize;
        let nics = 2 + self.rng.below(3) as usize;
        let filesystems = 2 + self.rng.below(4) as usize;
        let busy = self.rng.log_uniform(0.05, 1.0);

        // Info and static facts.
        for name in [
            "node_uname_info",
            "node_os_info",
            "node_exporter_build_info",
            "go_info",
            "node_dmi_info",
            "node_selinux_enabled",
            "node_textfile_scrape_error",
        ] {
            self.constant(name, &[], if name.ends_with("error") { 0.0 } else { 1.0 });
        }
        let boot = 1_690_000_000.0 + self.rng.below(9_000_000) as f64;
        self.constant("node_boot_time_seconds", &[], boot);
        self.constant("process_max_fds", &[], 1_048_576.0);
        self.constant("node_filefd_maximum", &[], 9.223_372_036_854_776e18);
        self.constant(
            "process_virtual_memory_max_bytes",
            &[],
            1.8446744073709552e19,
        );
        self.constant("process_start_time_seconds", &[], boot + 12.34);
        for collector in COLLECTORS {
            self.constant(
                "node_scrape_collector_success",
                &[("collector", collector)],
                1.0,
            );
            let median_ns = self.rng.log_uniform(5e3, 5e5);
            self.push(
                "node_scrape_collector_duration_seconds",
                &[("collector", collector)],
                Model::Duration { median_ns },
            );
        }

        // CPUs.
        for cpu in 0..cpus {
            let cpu = cpu.to_string();
            let l = |mode| [("cpu", cpu.as_str()), ("mode", mode)];
            // USER_HZ ticks per 15 s scrape: 1500 for a fully busy CPU.
            self.counter(
                "node_cpu_seconds_total",
                &l("idle"),
                1500.0 * (1.0 - busy),
                1.0,
                Unit::Hundredths,
            );
            self.counter(
                "node_cpu_seconds_total",
                &l("user"),
                1500.0 * busy * 0.6,
                1.0,
                Unit::Hundredths,
            );
            self.counter(
                "node_cpu_seconds_total",
                &l("system"),
                1500.0 * busy * 0.3,
                1.0,
                Unit::Hundredths,
            );
            self.counter(
                "node_cpu_seconds_total",
                &l("iowait"),
                10.0 * busy,
                0.6,
                Unit::Hundredths,
            );
            self.counter(
                "node_cpu_seconds_total",
                &l("softirq"),
                20.0 * busy,
                0.8,
                Unit::Hundredths,
            );
            self.counter(
                "node_cpu_seconds_total",
                &l("irq"),
                2.0,
                0.05,
                Unit::Hundredths,
            );
            let nice = self.rng.below(500) as f64 / 100.0;
            self.constant("node_cpu_seconds_total", &l("nice"), nice);
            self.constant("node_cpu_seconds_total", &l("steal"), 0.0);
            let c = [("cpu", cpu.as_str())];
            self.constant(
                "node_cpu_guest_seconds_total",
                &[("cpu", cpu.as_str()), ("mode", "user")],
                0.0,
            );
            self.constant(
                "node_cpu_guest_seconds_total",
                &[("cpu", cpu.as_str()), ("mode", "nice")],
                0.0,
            );
            self.constant("node_cpu_frequency_max_hertz", &c, 3.5e9);
            self.constant("node_cpu_frequency_min_hertz", &c, 8e8);
            self.gauge(
                "node_cpu_scaling_frequency_hertz",
                &c,
                2_000_000,
                300_000.0,
                0.5,
                Unit::Times(1000),
            );
            self.constant(
                "node_cpu_core_throttles_total",
                &[("core", cpu.as_str()), ("package", "0")],
                0.0,
            );
            self.counter(
                "node_schedstat_timeslices_total",
                &c,
                3000.0 * busy + 50.0,
                1.0,
                Unit::One,
            );
            self.counter(
                "node_schedstat_running_seconds_total",
                &c,
                1500.0 * busy,
                1.0,
                Unit::Hundredths,
            );
            self.counter(
                "node_schedstat_waiting_seconds_total",
                &c,
                100.0 * busy,
                1.0,
                Unit::Hundredths,
            );
        }
        for (name, rate) in [
            ("node_context_switches_total", 30_000.0),
            ("node_intr_total", 20_000.0),
            ("node_vmstat_pgfault", 50_000.0),
            ("node_vmstat_pgpgin", 400.0),
            ("node_vmstat_pgpgout", 2_000.0),
        ] {
            let rate = rate * busy * cpus as f64 / 4.0;
            self.counter(name, &[], rate.max(5.0), 1.0, Unit::One);
        }
        self.counter("node_forks_total", &[], 20.0 * busy, 0.9, Unit::One);
        self.counter("node_vmstat_pgmajfault", &[], 1.0, 0.05, Unit::One);
        self.constant("node_vmstat_oom_kill", &[], 0.0);
        for (name, period) in [
            ("node_load1", 4.0),
            ("node_load5", 20.0),
            ("node_load15", 60.0),
        ] {
            self.push(name, &[], Model::Load { period });
        }
        self.gauge("node_procs_running", &[], 2, 1.5, 0.7, Unit::One);
        self.gauge("node_procs_blocked", &[], 0, 0.4, 0.2, Unit::One);
        self.gauge("node_entropy_available_bits", &[], 256, 0.0, 0.0, Unit::One);
        self.constant("node_entropy_pool_size_bits", &[], 256.0);
        self.gauge("node_filefd_allocated", &[], 2_000, 10.0, 0.4, Unit::One);

        // Memory: /proc/meminfo in kB, exported as bytes.
        let total_kb = [2, 4, 8, 16, 32, 64][self.rng.below(6) as usize] * 1_024 * 1_024 - 123_456;
        for (field, share, step, p) in MEMINFO {
            let name = format!("node_memory_{field}_bytes");
            let start = (total_kb as f64 * share) as i64;
            if p == 0.0 {
                self.constant(&name, &[], (start * 1024) as f64);
            } else {
                self.gauge(
                    &name,
                    &[],
                    start,
                    step * total_kb as f64 / 1e7,
                    p,
                    Unit::Times(1024),
                );
            }
        }

        // Pressure stall information, microseconds / 1000 / 1000.
        for (resource, rate, p) in [
            ("cpu_waiting", 20_000.0, 1.0),
            ("io_waiting", 5_000.0, 0.8),
            ("io_stalled", 2_000.0, 0.6),
            ("memory_waiting", 50.0, 0.05),
            ("memory_stalled", 30.0, 0.05),
        ] {
            self.counter(
                &format!("node_pressure_{resource}_seconds_total"),
                &[],
                rate * busy,
                p,
                Unit::MicrosDivDiv,
            );
        }

        // Disks.
        for d in 0..disks {
            let device = ["sda", "sdb", "nvme0n1", "nvme1n1"][d];
            let l = [("device", device)];
            let io = busy * self.rng.log_uniform(0.1, 1.0);
            for (name, rate, p, unit) in [
                ("node_disk_reads_completed_total", 50.0, 0.7, Unit::One),
                ("node_disk_writes_completed_total", 300.0, 0.95, Unit::One),
                ("node_disk_reads_merged_total", 10.0, 0.4, Unit::One),
                ("node_disk_writes_merged_total", 100.0, 0.8, Unit::One),
                (
                    "node_disk_read_bytes_total",
                    50.0 * 16.0,
                    0.7,
                    Unit::Times(512),
                ),
                (
                    "node_disk_written_bytes_total",
                    300.0 * 16.0,
                    0.95,
                    Unit::Times(512),
                ),
                (
                    "node_disk_io_time_seconds_total",
                    2_000.0,
                    0.95,
                    Unit::MillisTimes,
                ),
                (
                    "node_disk_io_time_weighted_seconds_total",
                    5_000.0,
                    0.95,
                    Unit::MillisTimes,
                ),
                (
                    "node_disk_read_time_seconds_total",
                    300.0,
                    0.7,
                    Unit::MillisTimes,
                ),
                (
                    "node_disk_write_time_seconds_total",
                    3_000.0,
                    0.95,
                    Unit::MillisTimes,
                ),
                ("node_disk_discards_completed_total", 2.0, 0.05, Unit::One),
                (
                    "node_disk_discard_time_seconds_total",
                    5.0,
                    0.05,
                    Unit::MillisTimes,
                ),
                ("node_disk_flush_requests_total", 5.0, 0.3, Unit::One),
                (
                    "node_disk_flush_requests_time_seconds_total",
                    10.0,
                    0.3,
                    Unit::MillisTimes,
                ),
            ] {
                self.counter(name, &l, (rate * io).max(1.0), p, unit);
            }
            self.constant("node_disk_discarded_sectors_total", &l, 0.0);
            self.constant("node_disk_discards_merged_total", &l, 0.0);
            self.gauge("node_disk_io_now", &l, 0, 0.5, 0.1, Unit::One);
            self.constant(
                "node_disk_info",
                &[("device", device), ("major", "8"), ("minor", "0")],
                1.0,
            );
        }

        // File systems: sizes in 4 KiB blocks.
        for &(device, mountpoint, fstype) in &FILESYSTEMS[..filesystems] {
            let l = [
                ("device", device),
                ("fstype", fstype),
                ("mountpoint", mountpoint),
            ];
            let blocks = self.rng.log_uniform(1e5, 1e8) as i64;
            let free = (blocks as f64 * self.rng.uniform()) as i64;
            let churn = if fstype == "tmpfs" { 5.0 } else { 50.0 * busy };
            self.constant("node_filesystem_size_bytes", &l, (blocks * 4096) as f64);
            self.gauge(
                "node_filesystem_free_bytes",
                &l,
                free,
                churn,
                0.6,
                Unit::Times(4096),
            );
            self.gauge(
                "node_filesystem_avail_bytes",
                &l,
                free - blocks / 20,
                churn,
                0.6,
                Unit::Times(4096),
            );
            self.constant("node_filesystem_files", &l, (blocks / 4) as f64);
            self.gauge(
                "node_filesystem_files_free",
                &l,
                blocks / 5,
                churn / 10.0,
                0.3,
                Unit::One,
            );
            self.constant("node_filesystem_readonly", &l, 0.0);
            self.constant("node_filesystem_device_error", &l, 0.0);
        }

        // Network interfaces; the first is loopback.
        for n in 0..nics {
            let device = ["lo", "eth0", "eth1", "docker0"][n];
            let l = [("device", device)];
            let traffic = if n == 3 {
                0.0
            } else {
                busy * self.rng.log_uniform(0.01, 1.0)
            };
            for (name, rate) in [
                ("node_network_receive_bytes_total", 2e6),
                ("node_network_transmit_bytes_total", 1e6),
                ("node_network_receive_packets_total", 2e3),
                ("node_network_transmit_packets_total", 1.5e3),
            ] {
                if traffic == 0.0 {
                    self.constant(name, &l, 0.0);
                } else {
                    self.counter(name, &l, (rate * traffic).max(1.0), 1.0, Unit::One);
                }
            }
            self.counter("node_network_receive_drop_total", &l, 1.0, 0.01, Unit::One);
            self.counter(
                "node_network_receive_multicast_total",
                &l,
                2.0,
                0.1,
                Unit::One,
            );
            for name in [
                "node_network_receive_errs_total",
                "node_network_receive_fifo_total",
                "node_network_receive_frame_total",
                "node_network_receive_compressed_total",
                "node_network_transmit_errs_total",
                "node_network_transmit_drop_total",
                "node_network_transmit_fifo_total",
                "node_network_transmit_colls_total",
                "node_network_transmit_carrier_total",
                "node_network_transmit_compressed_total",
            ] {
                self.constant(name, &l, 0.0);
            }
            for (name, v) in [
                ("node_network_up", 1.0),
                (
                    "node_network_mtu_bytes",
                    if n == 0 { 65536.0 } else { 1500.0 },
                ),
                ("node_network_speed_bytes", 1.25e9),
                ("node_network_carrier", 1.0),
                ("node_network_iface_id", n as f64 + 1.0),
                ("node_network_transmit_queue_length", 1000.0),
                ("node_network_info", 1.0),
            ] {
                self.constant(name, &l, v);
            }
        }

        // Network protocol statistics.
        for (name, rate, p) in NETSTAT {
            if rate == 0.0 {
                self.constant(name, &[], 0.0);
            } else {
                self.counter(name, &[], (rate * busy).max(1.0), p, Unit::One);
            }
        }
        for (name, start) in [
            ("node_sockstat_TCP_inuse", 40),
            ("node_sockstat_TCP_alloc", 60),
            ("node_sockstat_TCP_tw", 20),
            ("node_sockstat_TCP_orphan", 0),
            ("node_sockstat_UDP_inuse", 5),
            ("node_sockstat_sockets_used", 300),
            ("node_sockstat_TCP_mem", 10),
            ("node_sockstat_UDP_mem", 2),
        ] {
            self.gauge(name, &[], start, 2.0, 0.4, Unit::One);
        }
        self.gauge(
            "node_sockstat_TCP_mem_bytes",
            &[],
            10,
            2.0,
            0.4,
            Unit::Times(4096),
        );
        self.gauge("node_nf_conntrack_entries", &[], 200, 8.0, 0.8, Unit::One);
        self.constant("node_nf_conntrack_entries_limit", &[], 262_144.0);

        // Hardware sensors and time.
        for sensor in 1..=cpus.min(4) + 1 {
            let sensor = format!("temp{sensor}");
            let l = [("chip", "platform_coretemp_0"), ("sensor", sensor.as_str())];
            self.gauge(
                "node_hwmon_temp_celsius",
                &l,
                45_000,
                1_000.0,
                0.3,
                Unit::Thousandths,
            );
            self.constant("node_hwmon_temp_crit_celsius", &l, 100.0);
            self.constant("node_hwmon_temp_max_celsius", &l, 84.0);
        }
        self.push("node_time_seconds", &[], Model::WallClock);
        self.gauge(
            "node_timex_offset_seconds",
            &[],
            0,
            20.0,
            0.5,
            Unit::MillisTimes,
        );
        self.constant("node_timex_sync_status", &[], 1.0);
        self.constant("node_timex_status", &[], 8193.0);

        // The exporter's own process and Go runtime.
        self.counter("process_cpu_seconds_total", &[], 3.0, 0.9, Unit::Hundredths);
        self.gauge(
            "process_resident_memory_bytes",
            &[],
            5_000,
            50.0,
            0.9,
            Unit::Times(4096),
        );
        self.gauge(
            "process_virtual_memory_bytes",
            &[],
            180_000,
            20.0,
            0.1,
            Unit::Times(4096),
        );
        self.gauge("process_open_fds", &[], 9, 1.0, 0.2, Unit::One);
        self.gauge("go_goroutines", &[], 8, 1.0, 0.1, Unit::One);
        self.gauge("go_threads", &[], 8, 0.0, 0.0, Unit::One);
        for (name, start, step, p) in [
            ("go_memstats_alloc_bytes", 250_000, 100_000.0, 1.0),
            ("go_memstats_heap_alloc_bytes", 250_000, 100_000.0, 1.0),
            ("go_memstats_heap_inuse_bytes", 400, 40.0, 0.9),
            ("go_memstats_heap_idle_bytes", 500, 200.0, 0.9),
            ("go_memstats_heap_released_bytes", 400, 200.0, 0.6),
            ("go_memstats_heap_sys_bytes", 1000, 100.0, 0.2),
            ("go_memstats_heap_objects", 15_000, 6_000.0, 1.0),
            ("go_memstats_stack_inuse_bytes", 50, 4.0, 0.3),
            ("go_memstats_sys_bytes", 1800, 30.0, 0.2),
            ("go_memstats_other_sys_bytes", 600_000, 60_000.0, 0.9),
            ("go_memstats_gc_sys_bytes", 1_000_000, 10_000.0, 0.5),
            ("go_memstats_next_gc_bytes", 4_000_000, 100_000.0, 0.3),
        ] {
            let unit = if name.contains("objects")
                || name.contains("other_sys")
                || name.contains("gc_sys")
                || name.contains("alloc_bytes")
                || name.contains("next_gc")
            {
                Unit::One
            } else {
                Unit::Times(8192)
            };
            self.gauge(name, &[], start, step, p, unit);
        }
        self.counter(
            "go_memstats_alloc_bytes_total",
            &[],
            1_500_000.0,
            1.0,
            Unit::One,
        );
        self.counter("go_memstats_mallocs_total", &[], 14_000.0, 1.0, Unit::One);
        self.counter("go_memstats_frees_total", &[], 14_000.0, 1.0, Unit::One);
        self.counter("go_memstats_lookups_total", &[], 0.0, 0.0, Unit::One);
        self.counter("go_gc_duration_seconds_count", &[], 1.0, 0.4, Unit::One);
        for q in ["0", "0.25", "0.5", "0.75", "1"] {
            let median_ns = 2e4 * (1.0 + q.parse::<f64>().unwrap_or(0.0) * 4.0);
            // Quantiles change only when a GC has run.
            self.push(
                "go_gc_duration_seconds",
                &[("quantile", q)],
                Model::Gauge {
                    start: median_ns as i64,
                    step: median_ns / 3.0,
                    p: 0.4,
                    min: 1_000,
                    unit: Unit::One,
                },
            );
        }
        // The quantile gauges above are in ns; they are scaled on output.
        self.counter(
            "promhttp_metric_handler_requests_total",
            &[("code", "200")],
            1.0,
            1.0,
            Unit::One,
        );
        self.constant(
            "promhttp_metric_handler_requests_total",
            &[("code", "500")],
            0.0,
        );
        self.constant(
            "promhttp_metric_handler_requests_total",
            &[("code", "503")],
            0.0,
        );
        self.gauge(
            "promhttp_metric_handler_requests_in_flight",
            &[],
            1,
            0.0,
            0.0,
            Unit::One,
        );
    }
}

/// node_exporter's default collectors, for the per-collector series.
const COLLECTORS: [&str; 38] = [
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "ipvs",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "rapl",
    "schedstat",
    "sockstat",
    "softnet",
    "stat",
    "textfile",
    "thermal_zone",
    "time",
    "vmstat",
];

/// `/proc/meminfo` fields: (name, share of MemTotal, step per change in
/// units of MemTotal / 1e7, probability of a change per scrape; 0 = constant).
const MEMINFO: [(&str, f64, f64, f64); 40] = [
    ("MemTotal", 1.0, 0.0, 0.0),
    ("MemFree", 0.3, 400.0, 0.95),
    ("MemAvailable", 0.6, 400.0, 0.95),
    ("Buffers", 0.02, 20.0, 0.8),
    ("Cached", 0.3, 300.0, 0.95),
    ("SwapCached", 0.0, 0.0, 0.0),
    ("Active", 0.2, 200.0, 0.95),
    ("Inactive", 0.2, 200.0, 0.95),
    ("Active_anon", 0.05, 100.0, 0.9),
    ("Inactive_anon", 0.01, 30.0, 0.9),
    ("Active_file", 0.15, 100.0, 0.9),
    ("Inactive_file", 0.19, 100.0, 0.9),
    ("Unevictable", 0.001, 2.0, 0.3),
    ("Mlocked", 0.001, 2.0, 0.3),
    ("SwapTotal", 0.0, 0.0, 0.0),
    ("SwapFree", 0.0, 0.0, 0.0),
    ("Dirty", 0.0005, 50.0, 0.95),
    ("Writeback", 0.0, 1.0, 0.05),
    ("AnonPages", 0.05, 100.0, 0.9),
    ("Mapped", 0.01, 10.0, 0.6),
    ("Shmem", 0.002, 2.0, 0.3),
    ("KReclaimable", 0.02, 5.0, 0.6),
    ("Slab", 0.03, 5.0, 0.7),
    ("SReclaimable", 0.02, 5.0, 0.6),
    ("SUnreclaim", 0.01, 2.0, 0.6),
    ("KernelStack", 0.001, 1.0, 0.5),
    ("PageTables", 0.001, 2.0, 0.6),
    ("NFS_Unstable", 0.0, 0.0, 0.0),
    ("Bounce", 0.0, 0.0, 0.0),
    ("WritebackTmp", 0.0, 0.0, 0.0),
    ("CommitLimit", 0.5, 0.0, 0.0),
    ("Committed_AS", 0.1, 50.0, 0.8),
    ("VmallocTotal", 8.0, 0.0, 0.0),
    ("VmallocUsed", 0.002, 0.5, 0.2),
    ("VmallocChunk", 0.0, 0.0, 0.0),
    ("Percpu", 0.0003, 0.0, 0.0),
    ("HardwareCorrupted", 0.0, 0.0, 0.0),
    ("AnonHugePages", 0.0, 0.0, 0.0),
    ("HugePages_Total", 0.0, 0.0, 0.0),
    ("Hugepagesize", 0.0001, 0.0, 0.0),
];

const FILESYSTEMS: [(&str, &str, &str); 5] = [
    ("/dev/sda1", "/", "ext4"),
    ("/dev/sda2", "/boot", "ext4"),
    ("tmpfs", "/run", "tmpfs"),
    ("/dev/sdb1", "/var/lib/data", "xfs"),
    ("tmpfs", "/run/user/1000", "tmpfs"),
];

/// `/proc/net/netstat` and `snmp` counters node_exporter exports by default:
/// (name, increments per scrape at full load, probability of a change; a
/// rate of 0 means the counter stays zero).
const NETSTAT: [(&str, f64, f64); 24] = [
    ("node_netstat_Icmp_InErrors", 0.0, 0.0),
    ("node_netstat_Icmp_InMsgs", 2.0, 0.2),
    ("node_netstat_Icmp_OutMsgs", 2.0, 0.2),
    ("node_netstat_Icmp6_InErrors", 0.0, 0.0),
    ("node_netstat_Icmp6_InMsgs", 1.0, 0.1),
    ("node_netstat_Icmp6_OutMsgs", 1.0, 0.1),
    ("node_netstat_Ip_Forwarding", 0.0, 0.0),
    ("node_netstat_IpExt_InOctets", 3e6, 1.0),
    ("node_netstat_IpExt_OutOctets", 1.5e6, 1.0),
    ("node_netstat_Ip6_InOctets", 1e4, 0.6),
    ("node_netstat_Ip6_OutOctets", 1e4, 0.6),
    ("node_netstat_Tcp_ActiveOpens", 20.0, 0.9),
    ("node_netstat_Tcp_PassiveOpens", 10.0, 0.8),
    ("node_netstat_Tcp_CurrEstab", 0.0, 0.0),
    ("node_netstat_Tcp_InErrs", 0.0, 0.0),
    ("node_netstat_Tcp_InSegs", 3e3, 1.0),
    ("node_netstat_Tcp_OutSegs", 2.5e3, 1.0),
    ("node_netstat_Tcp_OutRsts", 5.0, 0.6),
    ("node_netstat_Tcp_RetransSegs", 2.0, 0.3),
    ("node_netstat_TcpExt_ListenDrops", 0.0, 0.0),
    ("node_netstat_TcpExt_ListenOverflows", 0.0, 0.0),
    ("node_netstat_TcpExt_SyncookiesFailed", 0.0, 0.0),
    ("node_netstat_Udp_InDatagrams", 100.0, 0.95),
    ("node_netstat_Udp_OutDatagrams", 100.0, 0.95),
];

impl NodeFleet {
    /// Lays out the fleet's series (names, labels, value models); samples
    /// are generated per series by [`Fleet::series`].
    pub fn build(&self) -> Fleet {
        let mut rng = Rng::new(self.seed);
        let mut specs = Vec::new();
        for host in 0..self.hosts {
            HostBuilder {
                host,
                rng: &mut rng,
                out: &mut specs,
            }
            .build();
        }
        // Group by family (the order of an exposition file), then by labels.
        specs.sort_by(|a, b| (&a.family, &a.name, &a.labels).cmp(&(&b.family, &b.name, &b.labels)));
        Fleet {
            config: self.clone(),
            specs,
        }
    }

    /// The scrape timestamps of one host.
    fn timestamps(&self, host: usize) -> Vec<i64> {
        let mut rng = Rng::new(self.seed ^ (host as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let phase = rng.below(self.interval_ms as u64) as i64;
        (0..self.samples)
            .map(|i| {
                let grid = self.start_ms + phase + i as i64 * self.interval_ms;
                let mut jitter = (rng.gauss() * 2.0).round() as i64;
                if self.timestamps == TimestampStyle::Snapped && jitter.abs() <= 2 {
                    jitter = 0;
                }
                if rng.chance(0.005) {
                    jitter += 20 + rng.below(180) as i64;
                }
                if self.timestamps == TimestampStyle::Exact {
                    jitter = 0;
                }
                grid + jitter
            })
            .collect()
    }
}

impl Fleet {
    /// Number of series in the fleet.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True if the fleet has no series (no hosts).
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// All series, generated one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Series> + '_ {
        (0..self.len()).map(|i| self.series(i))
    }

    /// Series `index` (in `0..len()`), generated on demand. Series are ordered
    /// by metric family, then name, then labels, as an exposition file
    /// groups them.
    pub fn series(&self, index: usize) -> Series {
        let fleet = &self.config;
        let spec = &self.specs[index];
        let timestamps = fleet.timestamps(spec.host);
        let mut rng = Rng::new(spec.seed);
        // The host's load factor: a slow multiplicative random walk shared
        // by all its busy counters (derived from the host, not the series).
        let mut host_rng = Rng::new(fleet.seed ^ 0x5151 ^ spec.host as u64);
        let mut log_load = 0.0f64;
        let mut values = Vec::with_capacity(fleet.samples);
        let mut c: i64 = 0;
        let mut level = 0.0f64;
        match spec.model {
            Model::Counter { start, .. } => c = start as i64,
            Model::Gauge { start, .. } => c = start,
            Model::Load { .. } => level = rng.uniform() * 4.0,
            _ => {}
        }
        let is_gc_quantile = spec.name == "go_gc_duration_seconds";
        for &t in &timestamps {
            log_load = 0.98 * log_load + 0.05 * host_rng.gauss();
            let v = match spec.model {
                Model::Const(v) => v,
                Model::Counter {
                    rate,
                    noise,
                    p,
                    unit,
                    ..
                } => {
                    if rate > 0.0 && rng.chance(p) {
                        let inc = rate / p.max(1e-9) * log_load.exp() * (noise * rng.gauss()).exp();
                        c += inc.round().max(0.0) as i64;
                    }
                    unit.value(c)
                }
                Model::Gauge {
                    step, p, min, unit, ..
                } => {
                    if step > 0.0 && rng.chance(p) {
                        c = (c + (rng.gauss() * step).round() as i64).max(min);
                    }
                    if is_gc_quantile {
                        c as f64 / 1e9
                    } else {
                        unit.value(c)
                    }
                }
                Model::Load { period } => {
                    let queue = (2.0 * log_load.exp() + rng.gauss()).max(0.0);
                    let alpha = 1.0 - (-15.0 / (60.0 * period)).exp();
                    level += alpha * (queue - level);
                    (level * 100.0).round() / 100.0
                }
                Model::Duration { median_ns } => {
                    let ns = (median_ns * (0.5 * rng.gauss()).exp()).round().max(100.0);
                    ns / 1e9
                }
                Model::WallClock => {
                    let ns = t * 1_000_000 + rng.below(1_000_000) as i64;
                    ns as f64 / 1e9
                }
            };
            values.push(v);
        }
        let mut labels = Vec::with_capacity(spec.labels.len() + 1);
        labels.push(("__name__".to_string(), spec.name.clone()));
        labels.extend(spec.labels.iter().cloned());
        Series {
            labels,
            family: spec.family.clone(),
            metric_type: spec.metric_type,
            samples: timestamps.into_iter().zip(values).collect(),
        }
    }
}

/// `series` series of a random walk `v += N(0, 1)` at full float precision,
/// `samples` each, on an exact 15 s grid from `start_ms`. Series are named
/// `random_walk` and told apart by an `id` label.
pub fn random_walk(series: usize, samples: usize, start_ms: i64, seed: u64) -> Vec<Series> {
    let mut rng = Rng::new(seed);
    (0..series)
        .map(|s| {
            let mut v = rng.uniform() * 100.0;
            let samples = (0..samples)
                .map(|i| {
                    v += rng.gauss();
                    (start_ms + i as i64 * 15_000, v)
                })
                .collect();
            Series {
                labels: vec![
                    ("__name__".into(), "random_walk".into()),
                    ("id".into(), format!("{s:05}")),
                    ("job".into(), "synthetic".into()),
                ],
                family: "random_walk".into(),
                metric_type: "gauge",
                samples,
            }
        })
        .collect()
}

/// Writes series as an OpenMetrics text file: a `# TYPE` line per family,
/// every sample with its timestamp in seconds (millisecond precision), and
/// `# EOF`. Consecutive series of the same family share the family's lines,
/// so `series` should be grouped by family (as [`Fleet::series`] is).
///
/// # Errors
/// Any error of `out`.
pub fn write_openmetrics<W: Write>(
    out: &mut W,
    series: impl IntoIterator<Item = Series>,
) -> io::Result<()> {
    let mut family: Option<String> = None;
    let mut line = String::new();
    for s in series {
        if family.as_deref() != Some(s.family.as_str()) {
            writeln!(out, "# TYPE {} {}", s.family, s.metric_type)?;
            family = Some(s.family.clone());
        }
        line.clear();
        line.push_str(&s.labels[0].1);
        if s.labels.len() > 1 {
            line.push('{');
            for (i, (name, value)) in s.labels[1..].iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(name);
                line.push_str("=\"");
                for ch in value.chars() {
                    match ch {
                        '\\' => line.push_str("\\\\"),
                        '"' => line.push_str("\\\""),
                        '\n' => line.push_str("\\n"),
                        c => line.push(c),
                    }
                }
                line.push('"');
            }
            line.push('}');
        }
        for &(t, v) in &s.samples {
            write!(out, "{line} ")?;
            write_value(out, v)?;
            writeln!(out, " {}.{:03}", t.div_euclid(1000), t.rem_euclid(1000))?;
        }
    }
    writeln!(out, "# EOF")
}

/// A value as exposition formats write it; Rust's `Display` for `f64` is the
/// shortest string that parses back to the same bits.
fn write_value<W: Write>(out: &mut W, v: f64) -> io::Result<()> {
    if v.is_nan() {
        write!(out, "NaN")
    } else if v == f64::INFINITY {
        write!(out, "+Inf")
    } else if v == f64::NEG_INFINITY {
        write!(out, "-Inf")
    } else {
        write!(out, "{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_is_deterministic_and_shaped_like_node_exporter() {
        let fleet = NodeFleet {
            hosts: 3,
            samples: 60,
            ..NodeFleet::default()
        }
        .build();
        let n = fleet.len();
        assert!((1_500..=3_300).contains(&n), "{n} series for 3 hosts");
        let a = fleet.series(n / 2);
        let b = fleet.series(n / 2);
        assert_eq!(a, b);
        let mut constant = 0;
        for i in 0..n {
            let s = fleet.series(i);
            assert_eq!(s.labels[0].0, "__name__");
            assert!(s.samples.windows(2).all(|w| w[0].0 < w[1].0));
            if s.samples
                .iter()
                .all(|x| x.1.to_bits() == s.samples[0].1.to_bits())
            {
                constant += 1;
            }
        }
        let share = constant as f64 / n as f64;
        assert!((0.4..0.75).contains(&share), "constant share {share}");
    }

    #[test]
    fn node_exporter_arithmetic_is_reproduced() {
        assert_eq!(
            Unit::MillisTimes.value(184_664).to_string(),
            "184.66400000000002"
        );
        assert_eq!(
            Unit::MicrosDivDiv.value(53_779_351).to_string(),
            "53.779351000000005"
        );
    }

    #[test]
    fn openmetrics_output_round_trips_values() {
        let series = random_walk(2, 3, 1_700_000_000_000, 1);
        let mut out = Vec::new();
        write_openmetrics(&mut out, series.clone()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("# TYPE random_walk gauge\n"));
        assert!(text.ends_with("# EOF\n"));
        let first = text.lines().nth(1).unwrap();
        let value: f64 = first.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(value.to_bits(), series[0].samples[0].1.to_bits());
        assert!(first.ends_with(" 1700000000.000"));
    }
}

//! A relabel plugin built to misbehave, for the host's containment tests.
//!
//! It implements the generated `relabeler` bindings directly rather than the
//! SDK's `Relabeler` trait, because the SDK makes the contract violations
//! below impossible to write.
//!
//! The behaviour of a call is chosen by the value of the label `__behaviour__`
//! in the batch's first label set (or by the configuration key `behaviour`
//! when that label is absent):
//!
//! | behaviour | what the call does |
//! | --- | --- |
//! | `echo` (default) | keeps every set and adds `calls="<n>"`: the calls this instance served |
//! | `loop` | spins forever (the host's epoch deadline must stop it) |
//! | `memory-bomb` | allocates and touches memory until allocation fails |
//! | `panic` | panics, which aborts: a trap |
//! | `wrong-count` | answers for one set fewer than it was given |
//! | `duplicate-labels` | names a label twice in every set |
//! | `bad-span` | points a label outside the answer's text |
//! | `guest-error` | returns `invalid-input` |
//! | `enormous` | returns `__size_mib__` MiB (default 16) of text in one label value |
//! | `log` | writes `__lines__` log lines `line <i> of <batch label job>` (default 1), then echoes |
//!
//! The configuration key `fail_init` makes `init` fail.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ember_plugin_sdk::bindings::relabeler::{Guest, export_relabeler_world};
use ember_plugin_sdk::{Batch, Config, LabelBatch, PluginError, RelabeledBatch};

static DEFAULT_BEHAVIOUR: OnceLock<String> = OnceLock::new();
static CALLS: AtomicU64 = AtomicU64::new(0);

struct Misbehaving;

impl Guest for Misbehaving {
    fn init() -> Result<(), PluginError> {
        let config = Config::load()?;
        if config.get("fail_init").is_some() {
            return Err(PluginError::InvalidConfig("fail_init is set".to_owned()));
        }
        let _ = DEFAULT_BEHAVIOUR.set(config.get("behaviour").unwrap_or("echo").to_owned());
        Ok(())
    }

    fn relabel(batch: LabelBatch) -> Result<RelabeledBatch, PluginError> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let mut batch = Batch::from_wit(batch);
        let first = if batch.is_empty() {
            None
        } else {
            Some(batch.set_mut(0))
        };
        let behaviour = first
            .as_ref()
            .and_then(|set| set.get("__behaviour__"))
            .map(str::to_owned)
            .unwrap_or_else(|| DEFAULT_BEHAVIOUR.get().cloned().unwrap_or_default());
        let size_mib: usize = first
            .as_ref()
            .and_then(|set| set.get("__size_mib__"))
            .and_then(|raw| raw.parse().ok())
            .unwrap_or(16);
        match behaviour.as_str() {
            "echo" => {
                let calls = calls.to_string();
                for index in 0..batch.len() {
                    batch.set_mut(index).set("calls", &calls);
                }
                Ok(batch.into_wit())
            }
            "loop" => {
                let mut spins: u64 = 0;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Fill every page so the memory is really committed.
                    hoard.push(vec![0xa5; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("the test asked this plugin to panic"),
            "wrong-count" => {
                let mut answer = batch.into_wit();
                answer.sets.pop();
                Ok(answer)
            }
            "duplicate-labels" => {
                let mut answer = batch.into_wit();
                let mut spans = Vec::new();
                let mut rest = answer.spans.chunks_exact(4);
                for count in answer.sets.iter_mut().flatten() {
                    let set: Vec<&[u32]> = rest.by_ref().take(*count as usize).collect();
                    for span in &set {
                        spans.extend_from_slice(span);
                    }
                    if let Some(first) = set.first() {
                        spans.extend_from_slice(first);
                        *count += 1;
                    }
                }
                answer.spans = spans;
                Ok(answer)
            }
            "bad-span" => {
                let mut answer = batch.into_wit();
                if answer.spans.len() >= 4 {
                    answer.spans[2] = u32::try_from(answer.text.len()).unwrap_or(u32::MAX);
                    answer.spans[3] = 10;
                }
                Ok(answer)
            }
            "log" => {
                let first = batch.set_mut(0);
                let job = first.get("job").unwrap_or_default().to_owned();
                let lines: usize = first
                    .get("__lines__")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                for line in 0..lines {
                    ember_plugin_sdk::log::info(&format!("line {line} of {job}"));
                }
                Ok(batch.into_wit())
            }
            "guest-error" => Err(PluginError::InvalidInput(
                "the test asked for an error".into(),
            )),
            "enormous" => {
                let huge = "x".repeat(size_mib << 20);
                for index in 0..batch.len() {
                    batch.set_mut(index).set("huge", &huge);
                }
                Ok(batch.into_wit())
            }
            other => Err(PluginError::InvalidInput(format!(
                "unknown behaviour {other:?}"
            ))),
        }
    }
}

export_relabeler_world!(Misbehaving with_types_in ember_plugin_sdk::bindings::relabeler);

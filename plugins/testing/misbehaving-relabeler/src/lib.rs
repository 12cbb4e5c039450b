//! A relabel plugin built to misbehave, for the host's containment tests.
//!
//! The behaviour of a call is chosen by the value of the label `__behaviour__`
//! in the batch's first label set (or by the configuration key `behaviour`
//! when that label is absent):
//!
//! | behaviour | what the call does |
//! | --- | --- |
//! | `echo` (default) | returns the batch unchanged, plus `calls="<n>"`: the calls this instance served |
//! | `loop` | spins forever (the host's epoch deadline must stop it) |
//! | `memory-bomb` | allocates and touches memory until allocation fails |
//! | `panic` | panics, which aborts: a trap |
//! | `wrong-count` | returns one entry fewer than it was given |
//! | `duplicate-labels` | returns label sets naming a label twice |
//! | `guest-error` | returns `invalid-input` |
//! | `enormous` | returns `__size_mib__` MiB (default 16) in one label value |

use std::sync::atomic::{AtomicU64, Ordering};

use ember_plugin_sdk::{
    Config, Label, LabelSet, LabelSetExt, PluginError, Relabeler, export_relabeler,
};

struct Misbehaving {
    default_behaviour: String,
    calls: AtomicU64,
}

impl Relabeler for Misbehaving {
    fn init(config: &Config) -> Result<Self, PluginError> {
        if config.get("fail_init").is_some() {
            return Err(PluginError::InvalidConfig("fail_init is set".to_owned()));
        }
        Ok(Misbehaving {
            default_behaviour: config.get("behaviour").unwrap_or("echo").to_owned(),
            calls: AtomicU64::new(0),
        })
    }

    fn relabel(&self, mut batch: Vec<LabelSet>) -> Result<Vec<Option<LabelSet>>, PluginError> {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let first = batch.first();
        let behaviour = first
            .and_then(|labels| labels.get("__behaviour__"))
            .unwrap_or(&self.default_behaviour)
            .to_owned();
        match behaviour.as_str() {
            "echo" => Ok(batch
                .into_iter()
                .map(|mut labels| {
                    labels.set("calls", calls.to_string());
                    Some(labels)
                })
                .collect()),
            "loop" => {
                let mut spins: u64 = 0;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page so the memory is really committed.
                    hoard.push(vec![0xa5; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("the test asked this plugin to panic"),
            "wrong-count" => {
                batch.pop();
                Ok(batch.into_iter().map(Some).collect())
            }
            "duplicate-labels" => Ok(batch
                .into_iter()
                .map(|mut labels| {
                    labels.push(Label {
                        name: "dup".to_owned(),
                        value: "1".to_owned(),
                    });
                    labels.push(Label {
                        name: "dup".to_owned(),
                        value: "2".to_owned(),
                    });
                    Some(labels)
                })
                .collect()),
            "guest-error" => Err(PluginError::InvalidInput(
                "the test asked for an error".into(),
            )),
            "enormous" => {
                let mib: usize = first
                    .and_then(|labels| labels.get("__size_mib__"))
                    .and_then(|raw| raw.parse().ok())
                    .unwrap_or(16);
                let huge = "x".repeat(mib << 20);
                Ok(batch
                    .into_iter()
                    .map(|mut labels| {
                        labels.set("huge", huge.clone());
                        Some(labels)
                    })
                    .collect())
            }
            other => Err(PluginError::InvalidInput(format!(
                "unknown behaviour {other:?}"
            ))),
        }
    }
}

export_relabeler!(Misbehaving);

//! Relabel pipelines with plugin steps.
//!
//! A scrape config's `relabel_configs` and `metric_relabel_configs` are lists
//! of [`RelabelStep`]s: built-in rules and `action: plugin` steps. A
//! [`RelabelPipeline`] groups consecutive rules into one segment, applied per
//! label set by `ember_model::relabel` exactly as without plugins, and runs
//! each plugin step as **one** call with every label set still alive at that
//! point (a whole discovery update, or a whole scrape). A pipeline without
//! plugin steps is never run through here: callers keep the plain rule path
//! ([`RelabelPipeline::rules_only`]).

use ember_config::{RelabelConfig, RelabelStep};
use ember_model::labels::Labels;
use ember_model::relabel;

use super::{PluginManager, PluginUseError};

/// A run of built-in rules, or one plugin call.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Rules(Vec<RelabelConfig>),
    Plugin(String),
}

/// The steps of one relabel list, ready to run over batches.
#[derive(Debug, Default)]
pub struct RelabelPipeline {
    segments: Vec<Segment>,
    /// Labels and text bytes of the last plugin batch: the next batch of a
    /// scrape is about as big, and is allocated at that size at once.
    size_hint: std::sync::Mutex<(usize, usize)>,
}

impl Clone for RelabelPipeline {
    fn clone(&self) -> RelabelPipeline {
        RelabelPipeline {
            segments: self.segments.clone(),
            size_hint: std::sync::Mutex::new((0, 0)),
        }
    }
}

impl PartialEq for RelabelPipeline {
    fn eq(&self, other: &RelabelPipeline) -> bool {
        self.segments == other.segments
    }
}

impl RelabelPipeline {
    /// Groups `steps` into segments.
    pub fn new(steps: &[RelabelStep]) -> RelabelPipeline {
        let mut segments: Vec<Segment> = Vec::new();
        for step in steps {
            match step {
                RelabelStep::Rule(rule) => match segments.last_mut() {
                    Some(Segment::Rules(rules)) => rules.push(rule.clone()),
                    _ => segments.push(Segment::Rules(vec![rule.clone()])),
                },
                RelabelStep::Plugin(name) => segments.push(Segment::Plugin(name.clone())),
            }
        }
        RelabelPipeline {
            segments,
            size_hint: std::sync::Mutex::new((0, 0)),
        }
    }

    /// The rules, when no step calls a plugin.
    pub fn rules_only(&self) -> Option<&[RelabelConfig]> {
        match self.segments.as_slice() {
            [] => Some(&[]),
            [Segment::Rules(rules)] => Some(rules),
            _ => None,
        }
    }

    /// Whether any step calls a plugin.
    pub fn has_plugins(&self) -> bool {
        self.rules_only().is_none()
    }

    /// The plugins the pipeline calls, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Plugin(name) => Some(name.as_str()),
            Segment::Rules(_) => None,
        })
    }

    /// Runs every step over `batch`: one entry per input, `None` where a step
    /// dropped the set. Each plugin step is one call with the sets still
    /// alive; a failed call fails the whole batch.
    pub async fn run(
        &self,
        manager: &PluginManager,
        batch: Vec<Labels>,
    ) -> Result<Vec<Option<Labels>>, PluginUseError> {
        let relabeled = self.run_batch(manager, &batch).await?;
        Ok(relabeled
            .into_iter()
            .zip(batch)
            .map(|(relabeled, input)| match relabeled {
                Relabeled::Dropped => None,
                Relabeled::Same => Some(input),
                Relabeled::Changed(labels) => Some(labels),
            })
            .collect())
    }

    /// [`run`](Self::run), telling which sets came out exactly as they went
    /// in, so that the scrape path can keep a series' cached hash and storage
    /// reference. Label sets cross into a plugin packed straight from their
    /// bytes and unchanged ones come back without being rebuilt.
    pub async fn run_batch(
        &self,
        manager: &PluginManager,
        batch: &[Labels],
    ) -> Result<Vec<Relabeled>, PluginUseError> {
        let mut out: Vec<Relabeled> = vec![Relabeled::Same; batch.len()];
        for segment in &self.segments {
            match segment {
                Segment::Rules(rules) => {
                    for (input, state) in batch.iter().zip(out.iter_mut()) {
                        let current = match state {
                            Relabeled::Dropped => continue,
                            Relabeled::Same => input,
                            Relabeled::Changed(labels) => &*labels,
                        };
                        *state = match relabel::process_labels(current, rules) {
                            None => Relabeled::Dropped,
                            Some(labels) if labels == *input => Relabeled::Same,
                            Some(labels) => Relabeled::Changed(labels),
                        };
                    }
                }
                Segment::Plugin(name) => {
                    call_plugin(manager, name, batch, &mut out, &self.size_hint).await?
                }
            }
        }
        Ok(out)
    }
}

/// What a pipeline did to one label set.
#[derive(Debug, Clone, PartialEq)]
pub enum Relabeled {
    /// A step dropped it.
    Dropped,
    /// It came out as it went in.
    Same,
    /// It came out as these labels.
    Changed(Labels),
}

/// One plugin call over the live sets, written back in place.
async fn call_plugin(
    manager: &PluginManager,
    name: &str,
    inputs: &[Labels],
    sets: &mut [Relabeled],
    size_hint: &std::sync::Mutex<(usize, usize)>,
) -> Result<(), PluginUseError> {
    let call_error = |source| PluginUseError::Call {
        name: name.to_owned(),
        source,
    };
    let mut live: Vec<usize> = Vec::with_capacity(sets.len());
    let (labels_hint, text_hint) = *size_hint
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // A little headroom, so that a scrape that grew by a few series does not
    // reallocate the whole batch.
    let mut batch = ember_plugin_host::PackedBatch::with_capacity(
        sets.len(),
        labels_hint + labels_hint / 16,
        text_hint + text_hint / 16,
    );
    for (index, state) in sets.iter().enumerate() {
        let labels = match state {
            Relabeled::Dropped => continue,
            Relabeled::Same => &inputs[index],
            Relabeled::Changed(labels) => labels,
        };
        batch.push_set(labels.iter()).map_err(call_error)?;
        live.push(index);
    }
    if live.is_empty() {
        return Ok(());
    }
    *size_hint
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = batch.size();
    let plugin = manager.get(name)?;
    let answer = manager.timed(&plugin, plugin.relabel_packed(batch)).await?;
    for (position, &index) in live.iter().enumerate() {
        match answer.get(position) {
            None => sets[index] = Relabeled::Dropped,
            Some(set) if set.is_unchanged() => {}
            Some(set) => {
                let labels = Labels::new(set.iter()).map_err(|error| {
                    call_error(ember_plugin_host::PluginCallError::InvalidOutput(
                        error.to_string(),
                    ))
                })?;
                sets[index] = if labels == inputs[index] {
                    Relabeled::Same
                } else {
                    Relabeled::Changed(labels)
                };
            }
        }
    }
    Ok(())
}

//! The `discovery` world: report target groups on each refresh.

use crate::{Config, LabelSet, PluginError, TargetGroup, labels};

/// A service-discovery plugin.
///
/// Contract: the host calls `init` once per instance, then `refresh` once
/// per refresh interval, never concurrently on one instance. Each answer is
/// the complete current state. Export the type with
/// [`export_discoverer!`](crate::export_discoverer).
pub trait Discoverer: Sized + Send + Sync + 'static {
    /// Builds the plugin from its configuration. An
    /// [`PluginError::InvalidConfig`] fails the plugin's load.
    fn init(config: &Config) -> Result<Self, PluginError>;

    /// Every target group the plugin knows now.
    fn refresh(&self) -> Result<Vec<TargetGroup>, PluginError>;
}

/// Builds one [`TargetGroup`].
///
/// ```
/// use ember_plugin_sdk::TargetGroupBuilder;
///
/// let group = TargetGroupBuilder::new("inventory/web")
///     .label("env", "prod")
///     .target("10.0.0.1:9100", [("__meta_inventory_rack", "r1")])
///     .build();
/// assert_eq!(group.targets[0][0].name, "__address__");
/// ```
#[derive(Debug, Clone)]
pub struct TargetGroupBuilder {
    group: TargetGroup,
}

impl TargetGroupBuilder {
    /// Starts a group with a source name that is stable across refreshes.
    pub fn new(source: impl Into<String>) -> TargetGroupBuilder {
        TargetGroupBuilder {
            group: TargetGroup {
                source: source.into(),
                targets: Vec::new(),
                labels: Vec::new(),
            },
        }
    }

    /// Adds a label common to every target of the group.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.group
            .labels
            .extend(labels([(name.into(), value.into())]));
        self
    }

    /// Adds a target at `address` (`host:port`) with extra labels, usually
    /// `__meta_<plugin>_*`.
    pub fn target<N: Into<String>, V: Into<String>>(
        mut self,
        address: impl Into<String>,
        extra: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut target: LabelSet = labels([("__address__".to_owned(), address.into())]);
        target.extend(labels(extra));
        self.group.targets.push(target);
        self
    }

    /// The finished group.
    pub fn build(self) -> TargetGroup {
        self.group
    }
}

/// Exports a [`Discoverer`] implementation as the plugin's `discovery` world.
#[macro_export]
macro_rules! export_discoverer {
    ($plugin:ty) => {
        const _: () = {
            static STATE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            struct Export;

            impl $crate::bindings::discovery::Guest for Export {
                fn init() -> ::std::result::Result<(), $crate::PluginError> {
                    $crate::__private::init(&STATE, <$plugin as $crate::Discoverer>::init)
                }

                fn refresh()
                -> ::std::result::Result<::std::vec::Vec<$crate::TargetGroup>, $crate::PluginError>
                {
                    $crate::Discoverer::refresh($crate::__private::state(&STATE)?)
                }
            }

            $crate::bindings::discovery::export_discovery_world!(
                Export with_types_in $crate::bindings::discovery
            );
        };
    };
}

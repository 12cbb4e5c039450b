//! Ember's `plugins` section.

use super::*;

impl Validator<'_> {
    pub(super) fn plugins(&self, raws: Vec<RawPluginConfig>) -> Result<Vec<PluginConfig>> {
        let mut plugins: Vec<PluginConfig> = Vec::new();
        let mut first_paths: HashMap<String, String> = HashMap::new();
        for (index, raw) in raws.into_iter().enumerate() {
            let path = child_index("plugins", index);
            let field = |name: &str| child_key(&path, name);
            if raw.name.is_empty() {
                return Err(self.error(&field("name"), "plugin name is empty"));
            }
            if let Some(first) = first_paths.get(&raw.name) {
                return Err(self.error(
                    &field("name"),
                    format!(
                        "plugin name {:?} is declared twice (first at {first})",
                        raw.name
                    ),
                ));
            }
            first_paths.insert(raw.name.clone(), path.clone());
            let kind = PluginKind::from_config(&raw.kind).ok_or_else(|| {
                let known: Vec<&str> = PluginKind::ALL.iter().map(|kind| kind.as_str()).collect();
                self.error(
                    &field("kind"),
                    format!(
                        "unknown plugin kind {:?}, expected one of {}",
                        raw.kind,
                        known.join(", ")
                    ),
                )
            })?;
            if raw.path.is_empty() {
                return Err(self.error(&field("path"), "plugin path is empty"));
            }
            let limits = match &raw.limits {
                None => PluginLimits::default(),
                Some(limits) => {
                    let limits_path = field("limits");
                    let memory_path = child_key(&limits_path, "memory");
                    let memory = self
                        .size(&memory_path, limits.memory.as_deref())?
                        .unwrap_or(DEFAULT_PLUGIN_MEMORY);
                    if memory == 0 {
                        return Err(self.error(
                            &memory_path,
                            "plugin memory limit must be greater than zero",
                        ));
                    }
                    if limits.fuel == Some(0) {
                        return Err(self.error(
                            &child_key(&limits_path, "fuel"),
                            "plugin fuel must be greater than zero when set",
                        ));
                    }
                    PluginLimits {
                        memory,
                        call_timeout: self.positive_duration(
                            &child_key(&limits_path, "call_timeout"),
                            limits.call_timeout.as_deref(),
                            DEFAULT_PLUGIN_CALL_TIMEOUT,
                        )?,
                        fuel: limits.fuel,
                    }
                }
            };
            let capabilities = match &raw.capabilities {
                None => PluginCapabilities::default(),
                Some(capabilities) => {
                    let capabilities_path = field("capabilities");
                    let allowed_hosts = capabilities.allowed_hosts.clone().unwrap_or_default();
                    let env = capabilities.env.clone().unwrap_or_default();
                    for (list, values) in [("allowed_hosts", &allowed_hosts), ("env", &env)] {
                        if let Some(index) = values.iter().position(|value| value.trim().is_empty())
                        {
                            return Err(self.error(
                                &child_index(&child_key(&capabilities_path, list), index),
                                format!("{list} entries must not be empty"),
                            ));
                        }
                    }
                    PluginCapabilities {
                        allowed_hosts,
                        env,
                        read_only_dir: capabilities
                            .read_only_dir
                            .as_deref()
                            .map(|dir| self.file_path(dir)),
                    }
                }
            };
            plugins.push(PluginConfig {
                name: raw.name,
                kind,
                path: self.file_path(&raw.path),
                config: raw.config.unwrap_or_default(),
                limits,
                capabilities,
            });
        }
        Ok(plugins)
    }
}

//! Ember's `plugins` section.

use super::*;

impl Validator<'_> {
    pub(super) fn plugins(&mut self, raws: Vec<RawPluginConfig>) -> Result<Vec<PluginConfig>> {
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
                    if limits.fuel.is_some() {
                        self.warn(
                            &child_key(&limits_path, "fuel"),
                            "Ember does not meter plugin fuel; call_timeout bounds each call's CPU time",
                        );
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
                config: self.plugin_config_map(&field("config"), raw.config.as_ref())?,
                limits,
                capabilities,
            });
        }
        Ok(plugins)
    }

    /// A plugin's `config` as the string map `wasi:config/store` serves: scalars as
    /// text, lists of scalars joined with commas. Nested maps have no string form a
    /// plugin could rely on, so they are refused.
    pub(super) fn plugin_config_map(
        &self,
        path: &str,
        raw: Option<&Opaque>,
    ) -> Result<BTreeMap<String, String>> {
        let object = match raw {
            None | Some(Opaque::Null) => return Ok(BTreeMap::new()),
            Some(Opaque::Object(object)) => object,
            Some(_) => {
                return Err(self.error(path, "plugin config must be a map of names to values"));
            }
        };
        let scalar = |value: &Opaque| match value {
            Opaque::String(text) => Some(text.clone()),
            Opaque::Number(number) => Some(number.to_string()),
            Opaque::Bool(flag) => Some(flag.to_string()),
            Opaque::Null => Some(String::new()),
            Opaque::Array(_) | Opaque::Object(_) => None,
        };
        let mut map = BTreeMap::new();
        for (key, value) in object {
            let at = child_key(path, key);
            let text = match value {
                Opaque::Array(items) => items
                    .iter()
                    .map(&scalar)
                    .collect::<Option<Vec<String>>>()
                    .map(|items| items.join(","))
                    .ok_or_else(|| {
                        self.error(&at, "plugin config lists may only hold scalar values")
                    })?,
                other => scalar(other).ok_or_else(|| {
                    self.error(
                        &at,
                        "plugin config values must be scalars or lists of scalars, not maps",
                    )
                })?,
            };
            map.insert(key.clone(), text);
        }
        Ok(map)
    }
}

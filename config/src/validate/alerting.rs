//! `alerting`: alert relabelling and Alertmanager sets.

use super::*;

impl Validator<'_> {
    pub(super) fn alerting(
        &mut self,
        raw: RawAlertingConfig,
        global: &GlobalConfig,
        plugins: &[PluginConfig],
    ) -> Result<AlertingConfig> {
        let scheme = global.metric_name_validation_scheme;
        let alert_relabel_configs = self.relabel_configs(
            "alerting.alert_relabel_configs",
            raw.alert_relabel_configs.as_ref(),
            scheme,
        )?;
        let mut alertmanagers = Vec::new();
        for (index, raw) in raw.alertmanagers.unwrap_or_default().iter().enumerate() {
            let path = child_index("alerting.alertmanagers", index);
            let field = |name: &str| child_key(&path, name);
            match raw.api_version.as_deref() {
                None | Some("") | Some("v2") => {}
                Some(other) => {
                    return Err(self.error(
                        &field("api_version"),
                        format!(
                            "expected Alertmanager api version to be one of [v2] but got {other:?}"
                        ),
                    ));
                }
            }
            self.single_auth_method(
                &path,
                &[
                    ("basic_auth", raw.basic_auth.is_some()),
                    (
                        "authorization",
                        raw.authorization.is_some()
                            || raw.bearer_token.is_some()
                            || raw.bearer_token_file.is_some(),
                    ),
                    ("oauth2", raw.oauth2.is_some()),
                    ("sigv4", raw.sigv4.is_some()),
                ],
            )?;
            if raw.sigv4.is_some() {
                self.warn(&field("sigv4"), "Ember does not implement sigv4 request signing; alerts to these Alertmanagers are sent unsigned");
            }
            let service_discovery = self.service_discovery(
                &path,
                DiscoveryFields {
                    static_configs: raw.static_configs.as_deref(),
                    file_sd_configs: raw.file_sd_configs.as_deref(),
                    http_sd_configs: raw.http_sd_configs.as_deref(),
                    plugin_sd_configs: raw.plugin_sd_configs.as_deref(),
                    unsupported: raw.unsupported_discovery(),
                    check_target_addresses: raw.relabel_configs.as_ref().is_none_or(Vec::is_empty),
                },
                scheme,
                plugins,
                "this Alertmanager set",
            )?;
            alertmanagers.push(AlertmanagerConfig {
                timeout: self.positive_duration(
                    &field("timeout"),
                    raw.timeout.as_deref(),
                    DEFAULT_ALERTMANAGER_TIMEOUT,
                )?,
                path_prefix: raw
                    .path_prefix
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".to_owned()),
                scheme: self.scheme(&field("scheme"), raw.scheme.as_deref())?,
                http_client: self.http_client(&path, raw.http_client(), true)?,
                service_discovery,
                relabel_configs: self.relabel_configs(
                    &field("relabel_configs"),
                    raw.relabel_configs.as_ref(),
                    scheme,
                )?,
                alert_relabel_configs: self.relabel_configs(
                    &field("alert_relabel_configs"),
                    raw.alert_relabel_configs.as_ref(),
                    scheme,
                )?,
                sigv4: raw.sigv4.clone(),
            });
        }
        Ok(AlertingConfig {
            alert_relabel_configs,
            alertmanagers,
        })
    }
}

"""{{name}}: an Ember discovery plugin in Python.

Configuration (the plugin's `config:` map):
    targets  comma-separated host:port addresses (required)
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import logging, store
from wit_world.imports.types import Label, PluginError_InvalidConfig, TargetGroup


class WitWorld(wit_world.WitWorld):
    targets = []

    def init(self) -> None:
        raw = store.get("targets") or ""
        targets = [t.strip() for t in raw.split(",") if t.strip()]
        if not targets:
            raise Err(PluginError_InvalidConfig("set `targets`"))
        WitWorld.targets = targets
        logging.log(logging.Level.INFO, "{{name}}", f"{len(targets)} targets configured")

    def refresh(self):
        targets = [
            [Label("__address__", address), Label("__meta_{{ident}}_index", str(i))]
            for i, address in enumerate(WitWorld.targets)
        ]
        return [TargetGroup("{{name}}", targets, [])]

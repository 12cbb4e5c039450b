"""{{name}}: an Ember relabel plugin in Python.

Configuration (the plugin's `config:` map):
    drop_label  series carrying this label are dropped (default `drop`)
    add         a name=value label added to every other series (optional)
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import store
from wit_world.imports.types import PluginError_InvalidConfig

from ember_packed import pack, unpack


class WitWorld(wit_world.WitWorld):
    drop_label = "drop"
    add = None

    def init(self) -> None:
        WitWorld.drop_label = store.get("drop_label") or "drop"
        add = store.get("add")
        if add:
            name, sep, value = add.partition("=")
            if not sep:
                raise Err(PluginError_InvalidConfig(f"add: {add!r} is not name=value"))
            WitWorld.add = (name.strip(), value.strip())

    def relabel(self, batch):
        out = []
        for labels in unpack(batch):
            if any(name == WitWorld.drop_label for name, _ in labels):
                out.append(None)
                continue
            if WitWorld.add is not None:
                labels = [l for l in labels if l[0] != WitWorld.add[0]] + [WitWorld.add]
            out.append(labels)
        return pack(out)

"""{{name}}: an Ember exporter plugin in Python.

Configuration (the plugin's `config:` map):
    greeting  a label value for {{ident}}_info (default `hello`)
"""

import wit_world
from wit_world.imports import store
from wit_world.imports.types import Label, MetricFamily, MetricType, Sample


class WitWorld(wit_world.WitWorld):
    greeting = "hello"

    def init(self) -> None:
        WitWorld.greeting = store.get("greeting") or "hello"

    def collect(self, target, params):
        address = next((l.value for l in target if l.name == "__address__"), "")
        info = MetricFamily(
            "{{ident}}", MetricType.INFO, "Static information about this target.", "",
            [Sample("{{ident}}_info", [Label("greeting", WitWorld.greeting), Label("address", address)], 1.0, None)],
        )
        count = MetricFamily(
            "{{ident}}_params", MetricType.GAUGE, "Number of scrape parameters received.", "",
            [Sample("{{ident}}_params", [], float(len(params)), None)],
        )
        return [info, count]

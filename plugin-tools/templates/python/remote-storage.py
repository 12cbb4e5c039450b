"""{{name}}: an Ember remote-storage plugin in Python.

Logs a summary of each batch; replace `write` with the call to your storage.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import logging
from wit_world.imports.types import PluginError_Unsupported


class WitWorld(wit_world.WitWorld):
    def init(self) -> None:
        pass

    def write(self, batch) -> None:
        samples = sum(len(series.samples) for series in batch)
        logging.log(logging.Level.INFO, "{{name}}", f"received {len(batch)} series, {samples} samples")

    def read(self, query):
        raise Err(PluginError_Unsupported("this plugin does not answer remote-read queries"))

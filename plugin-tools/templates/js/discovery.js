// {{name}}: an Ember discovery plugin in JavaScript.
//
// Configuration (the plugin's `config:` map):
//   targets  comma-separated host:port addresses (required)

import { get } from "wasi:config/store@0.2.0-draft";
import { log } from "wasi:logging/logging@0.1.0-draft";

let targets = [];

export function init() {
  targets = (get("targets") ?? "").split(",").map((t) => t.trim()).filter((t) => t);
  if (targets.length === 0) {
    // A thrown { tag, val } is the export's `plugin-error`.
    throw { tag: "invalid-config", val: "set `targets`" };
  }
  log("info", "{{name}}", `${targets.length} targets configured`);
}

export function refresh() {
  return [{
    source: "{{name}}",
    targets: targets.map((address, i) => [
      { name: "__address__", value: address },
      { name: "__meta_{{ident}}_index", value: String(i) },
    ]),
    labels: [],
  }];
}

// {{name}}: an Ember remote-storage plugin in JavaScript.
//
// Logs a summary of each batch; replace `write` with the call to your
// storage (`fetch` works, to hosts in the plugin's allowed_hosts).

import { log } from "wasi:logging/logging@0.1.0-draft";

export function init() {}

export function write(batch) {
  const samples = batch.reduce((n, series) => n + series.samples.length, 0);
  log("info", "{{name}}", `received ${batch.length} series, ${samples} samples`);
}

export function read(query) {
  throw { tag: "unsupported", val: "this plugin does not answer remote-read queries" };
}

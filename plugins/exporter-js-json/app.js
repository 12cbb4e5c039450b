// exporter-js-json: an Ember exporter plugin in JavaScript.
//
// Fetches a JSON document over HTTP and turns its numbers into gauges, so
// any service with a JSON status endpoint becomes a scrape target:
//
//   {"queue": {"depth": 12, "workers": 3}, "healthy": true, "version": "1.2"}
//
// becomes, with the default prefix `json`:
//
//   json_queue_depth 12
//   json_queue_workers 3
//   json_healthy 1
//
// Numbers become gauges named `<prefix>_<path>` (the path's keys joined by
// `_`, with anything outside [a-zA-Z0-9_] replaced by `_`); booleans become
// 0 or 1; strings, nulls and arrays are skipped. Objects nest. With
// `fields` set, only the listed dotted paths are exported, and a listed
// path that is missing or not a number fails the scrape, so that a renamed
// field is noticed. `json_scrape_duration_seconds` and
// `json_document_bytes` describe the fetch itself.
//
// The document's URL is the scrape parameter `target` (set it with a
// relabel rule from `__address__`, as for the blackbox exporter), or else
// the configured `url`. Its host must be in the plugin's `allowed_hosts`.
//
// Configuration (the plugin's `config:` map):
//   url        the document, when no `target` parameter is given
//   prefix     metric name prefix (default `json`)
//   fields     comma-separated dotted paths to export (default: every number)
//   max_series at most this many gauges per scrape (default 1000)

import { get } from "wasi:config/store@0.2.0-draft";
import { log } from "wasi:logging/logging@0.1.0-draft";

let settings = null;

function fail(tag, message) {
  // A thrown { tag, val } is the export's `plugin-error`.
  return { tag, val: message };
}

function configValue(key) {
  const value = get(key);
  return value === undefined || value === null || value === "" ? undefined : value;
}

export function init() {
  const prefix = configValue("prefix") ?? "json";
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw fail("invalid-config", `prefix ${JSON.stringify(prefix)} is not a valid metric name`);
  }
  const maxSeries = Number(configValue("max_series") ?? "1000");
  if (!Number.isInteger(maxSeries) || maxSeries < 1) {
    throw fail("invalid-config", "max_series must be a positive whole number");
  }
  const fields = (configValue("fields") ?? "")
    .split(",")
    .map((f) => f.trim())
    .filter((f) => f.length > 0);
  settings = { url: configValue("url"), prefix, fields, maxSeries };
}

function sanitise(name) {
  return name.replace(/[^a-zA-Z0-9_]/g, "_");
}

function gauge(name, value, help = "") {
  return {
    name,
    metricType: "gauge",
    help,
    unit: "",
    samples: [{ name, labels: [], value, timestampMs: undefined }],
  };
}

function numeric(value) {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  return undefined;
}

// Every numeric leaf of `value` as [path, number], depth first.
function leaves(value, path, out) {
  const n = numeric(value);
  if (n !== undefined) {
    out.push([path, n]);
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value)) {
      leaves(child, path.concat([key]), out);
    }
  }
  return out;
}

function lookup(document, dotted) {
  let value = document;
  for (const key of dotted.split(".")) {
    if (value === null || typeof value !== "object" || !(key in value)) return undefined;
    value = value[key];
  }
  return value;
}

export async function collect(target, params) {
  const url = params.find((p) => p.name === "target")?.value ?? settings.url;
  if (!url) {
    throw fail("invalid-input", "no `target` parameter and no `url` configured");
  }
  const started = Date.now();
  let response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" } });
  } catch (error) {
    // The host refuses destinations outside allowed_hosts, which fetch
    // reports as a network error like any other.
    throw fail("unavailable", `GET ${url}: ${error}`);
  }
  const text = await response.text();
  if (!response.ok) {
    throw fail("unavailable", `GET ${url}: HTTP ${response.status}`);
  }
  let document;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw fail("unavailable", `GET ${url}: not JSON: ${error}`);
  }
  let values;
  if (settings.fields.length > 0) {
    values = settings.fields.map((field) => {
      const n = numeric(lookup(document, field));
      if (n === undefined) {
        throw fail("invalid-input", `field ${field} is missing or not a number in ${url}`);
      }
      return [field.split("."), n];
    });
  } else {
    values = leaves(document, [], []);
  }
  if (values.length > settings.maxSeries) {
    log("warn", "exporter-js-json", `${url}: ${values.length} numbers, exporting the first ${settings.maxSeries}`);
    values = values.slice(0, settings.maxSeries);
  }
  const families = new Map();
  for (const [path, n] of values) {
    const name = sanitise(`${settings.prefix}_${path.join("_")}`);
    // Two paths can sanitise to one name (`a.b` and `a_b`); the first wins.
    if (!families.has(name)) families.set(name, gauge(name, n));
  }
  const elapsed = (Date.now() - started) / 1000;
  return [
    ...families.values(),
    gauge(`${settings.prefix}_scrape_duration_seconds`, elapsed, "Time taken to fetch and parse the document."),
    gauge(`${settings.prefix}_document_bytes`, text.length, "Length of the JSON document in characters."),
  ];
}

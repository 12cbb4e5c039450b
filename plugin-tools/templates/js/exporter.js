// {{name}}: an Ember exporter plugin in JavaScript.
//
// Configuration (the plugin's `config:` map):
//   greeting  a label value for {{ident}}_info (default `hello`)

import { get } from "wasi:config/store@0.2.0-draft";

let greeting = "hello";

export function init() {
  greeting = get("greeting") ?? "hello";
}

// May be `async` (to await `fetch`); the host runs it to completion.
export function collect(target, params) {
  const address = target.find((l) => l.name === "__address__")?.value ?? "";
  return [
    {
      name: "{{ident}}", metricType: "info", help: "Static information about this target.", unit: "",
      samples: [{
        name: "{{ident}}_info",
        labels: [{ name: "greeting", value: greeting }, { name: "address", value: address }],
        value: 1, timestampMs: undefined,
      }],
    },
    {
      name: "{{ident}}_params", metricType: "gauge", help: "Number of scrape parameters received.", unit: "",
      samples: [{ name: "{{ident}}_params", labels: [], value: params.length, timestampMs: undefined }],
    },
  ];
}

// {{name}}: an Ember relabel plugin in JavaScript.
//
// Configuration (the plugin's `config:` map):
//   drop_label  series carrying this label are dropped (default `drop`)
//   add         a name=value label added to every other series (optional)
//
// The batch arrives packed (see `label-batch` in wit/types.wit): one string,
// four integers per label (name offset, name length, value offset, value
// length, in UTF-8 bytes) and a label count per set. `unpack` and `pack`
// below convert to and from arrays of [name, value] pairs.

import { get } from "wasi:config/store@0.2.0-draft";

let dropLabel = "drop";
let add = null;

export function init() {
  dropLabel = get("drop_label") ?? "drop";
  const raw = get("add");
  if (raw) {
    const i = raw.indexOf("=");
    if (i < 0) throw { tag: "invalid-config", val: `add: ${raw} is not name=value` };
    add = [raw.slice(0, i).trim(), raw.slice(i + 1).trim()];
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function unpack(batch) {
  const bytes = encoder.encode(batch.text);
  const spans = batch.spans;
  const text = (offset, length) => decoder.decode(bytes.subarray(offset, offset + length));
  const sets = [];
  let i = 0;
  for (const count of batch.sets) {
    const labels = [];
    for (let n = 0; n < count; n++, i += 4) {
      labels.push([text(spans[i], spans[i + 1]), text(spans[i + 2], spans[i + 3])]);
    }
    sets.push(labels);
  }
  return sets;
}

function pack(sets) {
  let text = "";
  let length = 0;
  const offsets = new Map();
  const spans = [];
  const place = (s) => {
    let found = offsets.get(s);
    if (found === undefined) {
      const size = encoder.encode(s).length;
      found = [length, size];
      offsets.set(s, found);
      text += s;
      length += size;
    }
    spans.push(found[0], found[1]);
  };
  const counts = sets.map((labels) => {
    if (labels === null) return undefined;
    for (const [name, value] of labels) {
      place(name);
      place(value);
    }
    return labels.length;
  });
  return { text, spans: new Uint32Array(spans), sets: counts };
}

export function relabel(batch) {
  return pack(unpack(batch).map((labels) => {
    if (labels.some(([name]) => name === dropLabel)) return null;
    if (add) return labels.filter(([name]) => name !== add[0]).concat([add]);
    return labels;
  }));
}

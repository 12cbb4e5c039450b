// {{name}}: an Ember relabel plugin in C.
//
// Drops every series that has a label named `drop_label` (default `drop`)
// and keeps the others unchanged.
//
// The batch arrives packed (see `label-batch` in wit/types.wit): one string
// with every name and value, four u32 per label (name offset, name length,
// value offset, value length) and one label count per set. The answer
// reuses the input's text and spans, so nothing is copied. The arguments
// belong to this function and the result is released with free(), so
// buffers may be moved from the argument into the result.

#include <stdlib.h>
#include <string.h>

#include "relabeler.h"

static char drop_label[256] = "drop";

bool exports_relabeler_init(relabeler_plugin_error_t *err) {
  relabeler_string_t key;
  relabeler_string_set(&key, "drop_label");
  relabeler_option_string_t value;
  wasi_config_store_error_t error;
  if (!wasi_config_store_get(&key, &value, &error)) {
    wasi_config_store_error_free(&error);
    err->tag = EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL;
    relabeler_string_dup(&err->val.internal, "cannot read the configuration");
    return false;
  }
  if (value.is_some) {
    if (value.val.len == 0 || value.val.len >= sizeof drop_label) {
      relabeler_option_string_free(&value);
      err->tag = EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG;
      relabeler_string_dup(&err->val.invalid_config, "drop_label must be 1 to 255 bytes");
      return false;
    }
    memcpy(drop_label, value.val.ptr, value.val.len);
    drop_label[value.val.len] = '\0';
    relabeler_option_string_free(&value);
  }
  return true;
}

bool exports_relabeler_relabel(relabeler_label_batch_t *batch, relabeler_relabeled_batch_t *ret,
                               relabeler_plugin_error_t *err) {
  (void)err;
  const uint8_t *text = batch->text.ptr;
  uint32_t *spans = batch->spans.ptr;
  size_t drop_len = strlen(drop_label);
  relabeler_option_u32_t *sets = malloc(batch->sets.len * sizeof *sets + 1);
  size_t read = 0, write = 0;
  for (size_t s = 0; s < batch->sets.len; s++) {
    uint32_t n = batch->sets.ptr[s];
    int drop = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t *l = spans + 4 * (read + i);
      if (l[1] == drop_len && memcmp(text + l[0], drop_label, drop_len) == 0) drop = 1;
    }
    sets[s].is_some = !drop;
    sets[s].val = n;
    if (!drop) {
      memmove(spans + 4 * write, spans + 4 * read, 4 * n * sizeof *spans);
      write += n;
    }
    read += n;
  }
  ret->text = batch->text;
  ret->spans.ptr = spans;
  ret->spans.len = 4 * write;
  ret->sets.ptr = sets;
  ret->sets.len = batch->sets.len;
  relabeler_list_u32_free(&batch->sets);
  return true;
}

// relabel-c-truncate: an Ember relabel plugin in C.
//
// Bounds label values: a value longer than `max_length` bytes is cut to at
// most `max_length` bytes, on a UTF-8 character boundary, so that one
// runaway value (a stack trace, a full URL) cannot bloat the index. Series
// whose metric name starts with `drop_prefix` are dropped. `__name__` is
// never truncated: a changed metric name would silently merge series.
//
// Configuration (the plugin's `config:` map):
//   max_length   bytes kept per label value, 1 to 65535 (default 128)
//   drop_prefix  drop series whose __name__ starts with this (default: none)
//
// The batch arrives packed (see `label-batch` in wit/types.wit): one string
// with every name and value, four u32 per label (name offset, name length,
// value offset, value length) and one label count per set. Truncating is
// shortening a value's length in place, so the answer reuses the input's
// text and spans: nothing is copied.
//
// Ownership, from the generated bindings: the arguments belong to this
// function, and the result is released with free() after the host has read
// it, so buffers may be moved from the argument into the result.

#include <stdlib.h>
#include <string.h>

#include "relabeler.h"

static uint32_t max_length = 128;
static char *drop_prefix = NULL;
static size_t drop_prefix_len = 0;

static void log_line(wasi_logging_logging_level_t level, const char *message) {
  relabeler_string_t context, text;
  relabeler_string_set(&context, "relabel-c-truncate");
  relabeler_string_set(&text, message);
  wasi_logging_logging_log(level, &context, &text);
}

static void set_error(relabeler_plugin_error_t *err, uint8_t tag, const char *message) {
  err->tag = tag;
  // Every case of plugin-error carries a string in the same place.
  relabeler_string_dup(&err->val.invalid_config, message);
}

// Reads config key `key`: returns 1 and a malloc'd NUL-terminated copy in
// *out when set, 0 when unset, -1 when the host failed.
static int config_get(const char *key, char **out) {
  relabeler_string_t name;
  relabeler_string_set(&name, key);
  relabeler_option_string_t value;
  wasi_config_store_error_t error;
  if (!wasi_config_store_get(&name, &value, &error)) {
    wasi_config_store_error_free(&error);
    return -1;
  }
  if (!value.is_some) return 0;
  *out = malloc(value.val.len + 1);
  memcpy(*out, value.val.ptr, value.val.len);
  (*out)[value.val.len] = '\0';
  relabeler_option_string_free(&value);
  return 1;
}

bool exports_relabeler_init(relabeler_plugin_error_t *err) {
  char *raw = NULL;
  int found = config_get("max_length", &raw);
  if (found < 0) {
    set_error(err, EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL, "cannot read the configuration");
    return false;
  }
  if (found) {
    char *end = NULL;
    long n = strtol(raw, &end, 10);
    int valid = end != raw && *end == '\0' && n >= 1 && n <= 65535;
    free(raw);
    if (!valid) {
      set_error(err, EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG,
                "max_length must be a whole number from 1 to 65535");
      return false;
    }
    max_length = (uint32_t)n;
  }
  free(drop_prefix);
  drop_prefix = NULL;
  drop_prefix_len = 0;
  if (config_get("drop_prefix", &drop_prefix) > 0) drop_prefix_len = strlen(drop_prefix);
  return true;
}

static int equals(const uint8_t *text, uint32_t offset, uint32_t length, const char *s) {
  size_t n = strlen(s);
  return length == n && memcmp(text + offset, s, n) == 0;
}

// The largest length <= max that ends on a UTF-8 character boundary of the
// value starting at `value`.
static uint32_t utf8_cut(const uint8_t *value, uint32_t length, uint32_t max) {
  if (length <= max) return length;
  uint32_t cut = max;
  // A continuation byte (10xxxxxx) at the cut means a character straddles it.
  while (cut > 0 && (value[cut] & 0xC0) == 0x80) cut--;
  return cut;
}

bool exports_relabeler_relabel(relabeler_label_batch_t *batch, relabeler_relabeled_batch_t *ret,
                               relabeler_plugin_error_t *err) {
  const uint8_t *text = batch->text.ptr;
  uint32_t *spans = batch->spans.ptr;
  size_t set_count = batch->sets.len;
  relabeler_option_u32_t *sets = malloc(set_count * sizeof *sets + 1);
  if (sets == NULL) {
    set_error(err, EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL, "out of memory");
    relabeler_label_batch_free(batch);
    return false;
  }
  size_t read = 0;   // index of the next input label
  size_t write = 0;  // index of the next output label (write <= read)
  size_t truncated = 0;
  for (size_t s = 0; s < set_count; s++) {
    uint32_t n = batch->sets.ptr[s];
    if ((size_t)read + n > batch->spans.len / 4) {
      free(sets);
      relabeler_label_batch_free(batch);
      set_error(err, EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT, "sets name more labels than spans has");
      return false;
    }
    int drop = 0;
    if (drop_prefix_len > 0) {
      for (uint32_t i = 0; i < n; i++) {
        uint32_t *l = spans + 4 * (read + i);
        if (equals(text, l[0], l[1], "__name__") && l[3] >= drop_prefix_len &&
            memcmp(text + l[2], drop_prefix, drop_prefix_len) == 0) {
          drop = 1;
          break;
        }
      }
    }
    if (drop) {
      sets[s].is_some = false;
      read += n;
      continue;
    }
    for (uint32_t i = 0; i < n; i++, read++, write++) {
      uint32_t *l = spans + 4 * read;
      if (l[3] > max_length && !equals(text, l[0], l[1], "__name__")) {
        l[3] = utf8_cut(text + l[2], l[3], max_length);
        truncated++;
      }
      if (write != read) memmove(spans + 4 * write, l, 4 * sizeof *spans);
    }
    sets[s].is_some = true;
    sets[s].val = n;
  }
  if (truncated > 0) log_line(WASI_LOGGING_LOGGING_LEVEL_DEBUG, "truncated label values");
  // Move text and spans into the answer; only the input's set counts are
  // left to free.
  ret->text = batch->text;
  ret->spans.ptr = spans;
  ret->spans.len = write * 4;
  ret->sets.ptr = sets;
  ret->sets.len = set_count;
  relabeler_list_u32_free(&batch->sets);
  return true;
}

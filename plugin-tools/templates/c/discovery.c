// {{name}}: an Ember discovery plugin in C.
//
// Configuration (the plugin's `config:` map):
//   targets  comma-separated host:port addresses (required)
//
// Ownership, from the generated bindings: results are released with free()
// after the host has read them, so every string and list in a result must
// come from malloc (discovery_string_dup does that).

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "discovery.h"

static char *targets = NULL;  // the configured value, NUL-terminated

static void set_error(discovery_plugin_error_t *err, uint8_t tag, const char *message) {
  err->tag = tag;
  // Every case of plugin-error carries a string in the same place.
  discovery_string_dup(&err->val.invalid_config, message);
}

bool exports_discovery_init(discovery_plugin_error_t *err) {
  discovery_string_t key;
  discovery_string_set(&key, "targets");
  discovery_option_string_t value;
  wasi_config_store_error_t error;
  if (!wasi_config_store_get(&key, &value, &error)) {
    wasi_config_store_error_free(&error);
    set_error(err, EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL, "cannot read the configuration");
    return false;
  }
  if (!value.is_some || value.val.len == 0) {
    discovery_option_string_free(&value);
    set_error(err, EMBER_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG, "set `targets`");
    return false;
  }
  free(targets);
  targets = malloc(value.val.len + 1);
  memcpy(targets, value.val.ptr, value.val.len);
  targets[value.val.len] = '\0';
  discovery_option_string_free(&value);
  return true;
}

static void label(ember_plugin_types_label_t *l, const char *name, const char *value) {
  discovery_string_dup(&l->name, name);
  discovery_string_dup(&l->value, value);
}

bool exports_discovery_refresh(discovery_list_target_group_t *ret, discovery_plugin_error_t *err) {
  (void)err;
  size_t count = 1;
  for (const char *c = targets; *c; c++) count += *c == ',';
  discovery_target_group_t *group = calloc(1, sizeof *group);
  discovery_string_dup(&group->source, "{{name}}");
  group->targets.ptr = calloc(count, sizeof *group->targets.ptr);
  size_t n = 0;
  char *copy = strdup(targets);
  for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
    ember_plugin_types_label_set_t *set = &group->targets.ptr[n];
    set->ptr = calloc(2, sizeof *set->ptr);
    set->len = 2;
    char index[24];
    snprintf(index, sizeof index, "%zu", n);
    label(&set->ptr[0], "__address__", t);
    label(&set->ptr[1], "__meta_{{ident}}_index", index);
    n++;
  }
  free(copy);
  group->targets.len = n;
  ret->ptr = group;
  ret->len = 1;
  return true;
}

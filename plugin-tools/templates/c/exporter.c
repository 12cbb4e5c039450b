// {{name}}: an Ember exporter plugin in C.
//
// Answers `{{ident}}_labels` (how many labels the target has) and
// `{{ident}}_params` (how many scrape parameters came with the call).
//
// Ownership, from the generated bindings: the arguments belong to this
// function (free them), and results are released with free() after the
// host has read them, so every string and list in a result must come from
// malloc (exporter_string_dup does that).

#include <stdlib.h>

#include "exporter.h"

bool exports_exporter_init(exporter_plugin_error_t *err) {
  (void)err;
  return true;
}

static void gauge(exporter_metric_family_t *family, const char *name, const char *help, double value) {
  exporter_string_dup(&family->name, name);
  family->metric_type = EMBER_PLUGIN_TYPES_METRIC_TYPE_GAUGE;
  exporter_string_dup(&family->help, help);
  exporter_string_dup(&family->unit, "");
  family->samples.ptr = calloc(1, sizeof *family->samples.ptr);
  family->samples.len = 1;
  exporter_string_dup(&family->samples.ptr[0].name, name);
  family->samples.ptr[0].value = value;
  family->samples.ptr[0].timestamp_ms.is_some = false;
}

bool exports_exporter_collect(exporter_label_set_t *target, exporter_list_param_t *params,
                              exporter_list_metric_family_t *ret, exporter_plugin_error_t *err) {
  (void)err;
  ret->ptr = calloc(2, sizeof *ret->ptr);
  ret->len = 2;
  gauge(&ret->ptr[0], "{{ident}}_labels", "Labels of this target.", (double)target->len);
  gauge(&ret->ptr[1], "{{ident}}_params", "Scrape parameters received.", (double)params->len);
  ember_plugin_types_label_set_free(target);
  exporter_list_param_free(params);
  return true;
}

// {{name}}: an Ember remote-storage plugin in C.
//
// Logs a summary of each batch; replace `write` with the call to your
// storage. The arguments belong to this function: free them.

#include <stdio.h>
#include <stdlib.h>

#include "remote_storage.h"

bool exports_remote_storage_init(remote_storage_plugin_error_t *err) {
  (void)err;
  return true;
}

bool exports_remote_storage_write(remote_storage_list_series_t *batch, remote_storage_write_error_t *err) {
  (void)err;
  size_t samples = 0;
  for (size_t i = 0; i < batch->len; i++) samples += batch->ptr[i].samples.len;
  char message[96];
  snprintf(message, sizeof message, "received %zu series, %zu samples", batch->len, samples);
  remote_storage_string_t context, text;
  remote_storage_string_set(&context, "{{name}}");
  remote_storage_string_set(&text, message);
  wasi_logging_logging_log(WASI_LOGGING_LOGGING_LEVEL_INFO, &context, &text);
  remote_storage_list_series_free(batch);
  return true;
}

bool exports_remote_storage_read(remote_storage_read_query_t *query, remote_storage_list_series_t *ret,
                                 remote_storage_plugin_error_t *err) {
  (void)ret;
  ember_plugin_types_read_query_free(query);
  err->tag = EMBER_PLUGIN_TYPES_PLUGIN_ERROR_UNSUPPORTED;
  remote_storage_string_dup(&err->val.unsupported, "this plugin does not answer remote-read queries");
  return false;
}

/* A minimal TFLite external delegate for tests: it claims no nodes (the model runs on the
 * built-in kernels) and appends "key=value" lines of the options it was given, and "prepare"
 * when the interpreter prepares it, to the file named by its "record" option. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Delegate {
  void *data_;
  int (*Prepare)(void *context, struct Delegate *delegate);
  void *CopyFromBufferHandle;
  void *CopyToBufferHandle;
  void *FreeBufferHandle;
  int64_t flags;
  void *opaque_delegate_builder;
  char pad[256]; /* room for fields newer runtimes may append */
} Delegate;

static int prepare(void *context, Delegate *delegate) {
  (void)context;
  const char *path = (const char *)delegate->data_;
  if (path) {
    FILE *f = fopen(path, "a");
    if (f) { fputs("prepare\n", f); fclose(f); }
  }
  return 0;
}

Delegate *tflite_plugin_create_delegate(char **keys, char **values, size_t n,
                                        void (*report_error)(const char *)) {
  Delegate *d = calloc(1, sizeof(Delegate));
  char *record = NULL;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(keys[i], "record") == 0) record = strdup(values[i]);
  }
  if (!record) {
    if (report_error) report_error("record_delegate: the 'record' option is required");
    free(d);
    return NULL;
  }
  FILE *f = fopen(record, "a");
  if (f) {
    for (size_t i = 0; i < n; i++) fprintf(f, "%s=%s\n", keys[i], values[i]);
    fclose(f);
  }
  d->data_ = record;
  d->Prepare = prepare;
  return d;
}

void tflite_plugin_destroy_delegate(Delegate *d) {
  if (d) { free(d->data_); free(d); }
}

/* jsoncfg.h — JSON config files (cJSON) and typed reads with defaults.
 *
 * spo_cfg_load parses a file that must hold one JSON object and remembers
 * the path in the root item's `string` field (freed by cJSON_Delete), so
 * every spo_cfg_* error names the file and the key, e.g.
 *   "m/unet/config.json: 'block_out_channels' must be a list of integers".
 * A key that is absent or JSON null gives the default (arrays: *n = 0);
 * a key of the wrong type is SPO_EINVAL. Strings returned point into the
 * cJSON tree and live as long as it does. */
#ifndef SPO_JSONCFG_H
#define SPO_JSONCFG_H

#include <cjson/cJSON.h>

#include "core/err.h"

#define SPO_CFG_MAX_BYTES (64 << 20) /* larger config files are refused */

/* Parse path into *cfg (a JSON object); free with cJSON_Delete. Missing or
 * unreadable file: SPO_EIO; invalid JSON or not an object: SPO_EINVAL. */
int spo_cfg_load(cJSON **cfg, const char *path);
/* Load path, hand the object to parse(out, cfg), free it: the one way a
 * model part reads its config file. */
int spo_cfg_read(const char *path, int (*parse)(void *out, const cJSON *cfg), void *out);
/* Parse a string (label names it in messages). */
int spo_cfg_parse(cJSON **cfg, const char *text, size_t len, const char *label);
/* The file name remembered by spo_cfg_load ("config" when none). */
const char *spo_cfg_name(const cJSON *cfg);

/* SPO_EINVAL "<file>: missing 'key'" unless key is present and not null. */
int spo_cfg_require(const cJSON *cfg, const char *key);
int spo_cfg_int(const cJSON *cfg, const char *key, int def, int *out);
int spo_cfg_float(const cJSON *cfg, const char *key, float def, float *out);
int spo_cfg_double(const cJSON *cfg, const char *key, double def, double *out);
int spo_cfg_bool(const cJSON *cfg, const char *key, int def, int *out);
int spo_cfg_str(const cJSON *cfg, const char *key, const char *def, const char **out);
/* Several integer keys at once: each spec's key into *out (def when absent). */
typedef struct {
    const char *key;
    int def;
    int *out;
} spo_cfg_intkey;
int spo_cfg_ints(const cJSON *cfg, const spo_cfg_intkey *keys, int n);
/* A list of at most max integers / strings into out[0..*n). */
int spo_cfg_int_array(const cJSON *cfg, const char *key, int *out, int max, int *n);
int spo_cfg_str_array(const cJSON *cfg, const char *key, const char **out, int max, int *n);

#endif

/* schema.h — machine-readable file schemas (schemas/NAME.json) and validation.
 *
 * A schema names datasets (exact paths, or patterns with one '*' component
 * such as "/lora/<module>/down" written with a star), their allowed dtypes, symbolic shapes (a symbol
 * such as "B" must take the same value everywhere in a file; "_" is free;
 * numbers are exact), whether NaN/Inf is forbidden ("finite"), whether they
 * are optional, and root attributes with their types (required unless
 * "optional": true). The root
 * attribute `spo_schema` ("pool/1") names the schema of a file.
 *
 * Validation works on a spo_fileinfo — a listing of a file's datasets and
 * attributes — so it is independent of HDF5 (and fuzzable). */
#ifndef SPO_SCHEMA_H
#define SPO_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#define SPO_MAXDIM 8

typedef enum { SPO_T_F32, SPO_T_F16, SPO_T_I32, SPO_T_I64, SPO_T_STR, SPO_T_OTHER } spo_dtype_t;
typedef enum { SPO_A_STR, SPO_A_INT, SPO_A_FLOAT, SPO_A_OTHER } spo_atype_t;

typedef struct {
    char name[256];
    spo_dtype_t type;
    int ndim;
    int64_t shape[SPO_MAXDIM];
    int64_t nonfinite; /* NaN/Inf count, -1 when not counted */
} spo_dsinfo;

typedef struct {
    char name[64];
    spo_atype_t type;
} spo_attrinfo;

typedef struct {
    char schema[64]; /* root spo_schema, "" when absent */
    spo_dsinfo *ds;
    int nds;
    spo_attrinfo *at;
    int nat;
} spo_fileinfo;

typedef struct {
    const char *name;
    int64_t value;
} spo_dimbind;

typedef struct spo_schema spo_schema;

/* Parse a schema from JSON text. SPO_EINVAL with a message when malformed. */
int spo_schema_parse(spo_schema **s, const char *json, size_t len);
void spo_schema_free(spo_schema *s);
/* Built-in schema by "name" (newest version) or "name/version"; NULL if none. */
const spo_schema *spo_schema_builtin(const char *tag);
/* All built-in schemas: index 0.. until NULL. */
const spo_schema *spo_schema_builtin_at(int i);
const char *spo_schema_name(const spo_schema *s);
int spo_schema_version(const spo_schema *s);
/* Human-readable description (spo-files(5) is written from the same JSON). */
const char *spo_schema_description(const spo_schema *s);

/* Check a file listing against s. pre binds symbols in advance (e.g. the
 * model's latent size; NULL-terminated by name == NULL, or NULL). fname
 * prefixes the message: "p.h5: /children is [10,4,4,8,8], expected
 * [B,K,C,h,w] = [10,K,4,16,16]". Returns SPO_OK or SPO_EINVAL. */
int spo_schema_check(const spo_schema *s, const spo_fileinfo *fi, const char *fname, const spo_dimbind *pre);

/* Read-only view of a schema's rules (for spo-inspect --describe and for
 * writing example files in tests). */
int spo_schema_n_datasets(const spo_schema *s);
/* Dataset i: name (may contain '*'), first allowed dtype, flags. */
const char *spo_schema_ds_name(const spo_schema *s, int i, spo_dtype_t *dtype, int *optional, int *finite);
/* Shape of dataset i with symbols resolved from sizes (NULL-terminated;
 * "_" and unknown symbols take dflt). Returns the rank. */
int spo_schema_ds_shape(const spo_schema *s, int i, const spo_dimbind *sizes, int64_t dflt, int64_t *shape);
/* Symbolic shape as text, e.g. "[B,K,C,h,w]". */
void spo_schema_ds_shape_str(const spo_schema *s, int i, char *buf, size_t n);
int spo_schema_n_attrs(const spo_schema *s);
const char *spo_schema_attr(const spo_schema *s, int i, spo_atype_t *type);
int spo_schema_attr_optional(const spo_schema *s, int i);

const char *spo_dtype_name(spo_dtype_t t);
void spo_fileinfo_free(spo_fileinfo *fi);

#endif

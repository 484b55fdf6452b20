/* params.h — a model's parameters carved from one buffer by a name table.
 *
 * Model code declares every tensor it needs, with its exact checkpoint name
 * and shape, into a spo_params table (spo_params_add), then either fills it
 * with seeded random values or loads it from a safetensors file by exact
 * names: a tensor that is missing, unexpected or of the wrong shape is an
 * SPO_EINVAL error naming it. F16/BF16 files are converted to fp32 once.
 * After spo_params_alloc the buffer lives on the device; each entry's
 * pointer is base + offset. (llm.c: "parameters carved out of one buffer by
 * a size table".) */
#ifndef SPO_PARAMS_H
#define SPO_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/safetensors.h"
#include "ops/ops.h"

typedef struct {
    char *name;       /* exact checkpoint name, e.g. "down_blocks.0.resnets.0.conv1.weight" */
    int ndim;
    int64_t shape[4];
    size_t numel, offset; /* in floats, within the buffer */
    float **slot;     /* where the model keeps the pointer (set by spo_params_alloc), may be NULL */
    char *alias;      /* a second accepted checkpoint name (legacy naming), or NULL */
    int unit_dims;    /* 1: the file may add trailing dims of size 1 ([C,C,1,1] for [C,C]) */
} spo_param;

typedef struct {
    spo_param *p;
    int n;
    size_t cap;
    size_t total;     /* floats */
    float *buf;       /* device memory, after alloc */
    spo_dev *dev;
    char **ignore;    /* file names starting with one of these are skipped by load */
    int nignore;
} spo_params;

void spo_params_init(spo_params *ps);
void spo_params_free(spo_params *ps);
/* Most floats in one table (2^36: 256 GiB of fp32); a config asking more is
 * refused before anything is allocated. */
#define SPO_PARAMS_MAX_FLOATS ((uint64_t)1 << 36)
/* Declare a tensor; *slot receives its device pointer at alloc. Shape dims
 * end at the first 0 (up to 4). Returns SPO_OK, SPO_EIO (memory) or
 * SPO_EINVAL (the table would exceed SPO_PARAMS_MAX_FLOATS). */
int spo_params_add(spo_params *ps, float **slot, const char *name, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* printf-style name helper for spo_params_add: */
int spo_params_addf(spo_params *ps, float **slot, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt,
                    ...) __attribute__((format(printf, 7, 8)));
const spo_param *spo_params_find(const spo_params *ps, const char *name);
/* Allocate the buffer on dev (zeroed) and set every slot. */
int spo_params_alloc(spo_params *ps, spo_dev *dev);
/* Load from a safetensors file: every declared name must be present with the
 * same number of elements and shape (prefix is prepended to declared names,
 * e.g. "text_model."; NULL for none); unexpected names are errors unless
 * allow_extra (e.g. position_ids buffers that some files carry). */
int spo_params_load(spo_params *ps, const char *path, const char *prefix, int allow_extra);
/* The same checks as spo_params_load on the file's header only: nothing is
 * read or allocated (check a config against its weights before allocating). */
int spo_params_check_file(spo_params *ps, const char *path, const char *prefix, int allow_extra);
/* Check the file's names and shapes, then spo_params_alloc on dev, then load:
 * a config that does not fit its weights fails before any allocation. */
int spo_params_alloc_load(spo_params *ps, spo_dev *dev, const char *path, const char *prefix, int allow_extra);
/* A model whose struct holds its table: size bytes, its spo_params at byte
 * ps_at; declare adds the model's tensors to that table ps (checking its
 * config first), release is its free function. */
typedef struct {
    size_t size, ps_at;
    int (*declare)(void *model, spo_params *ps);
    void (*release)(void *model);
} spo_params_kind;
/* A model in one call: a heap copy of init (the config and device set, all
 * else zero), spo_params_init, declare, then with weights
 * spo_params_alloc_load, without spo_params_alloc; dev NULL: the table
 * only. Declare errors are prefixed with weights. NULL with *rc set on
 * failure (the copy released). */
void *spo_params_new(const spo_params_kind *k, const void *init, spo_dev *dev, const char *weights, int *rc);
/* Any source of named tensors (a safetensors file, a PyTorch .bin through
 * lib/ptbin, ...): `count` tensors; info gives the i-th one's name and
 * shape (pointers valid while the source lives), read converts its data to
 * fp32 host memory (numel floats). `label` names the source in messages. */
typedef struct {
    const char *label;
    void *ctx;
    int count;
    int (*info)(void *ctx, int i, const char **name, int *ndim, const int64_t **shape);
    int (*read)(void *ctx, int i, float *dst);
} spo_tensor_src;
/* An open safetensors file as a tensor source named label (st stays the
 * caller's, to close after the source's last use). */
spo_tensor_src spo_tensor_src_st(spo_st *st, const char *label);
/* Load several tables from one source, as spo_params_load does for one:
 * every source tensor (not ignored by a table's ignore list) must be
 * declared by exactly one of the tables (else "unexpected", unless
 * allow_extra), every declared tensor must be present. */
int spo_params_load_src(spo_params *const *tables, int ntables, const spo_tensor_src *src, const char *prefix,
                        int allow_extra);
/* Names and shapes only, as spo_params_check_file (tables need not be allocated). */
int spo_params_check_src(spo_params *const *tables, int ntables, const spo_tensor_src *src, const char *prefix,
                         int allow_extra);

/* Loading extensions, declared after spo_params_add and before load:
 * alias: the file may give entry `name` under `alias` instead (e.g. the
 *   legacy VAE "mid_block.attentions.0.query.weight" for ".to_q.weight");
 *   a file holding both is an error.
 * unit_dims: the file's tensor for `name` may carry extra trailing dims of
 *   size 1 (a 1x1 conv weight [C,C,1,1] read as a linear [C,C]).
 * ignore: file tensors whose full name (before prefix stripping) starts
 *   with `prefix` are skipped (the VAE encoder half, position_ids buffers);
 *   unlike allow_extra, every other unexpected name stays an error. */
int spo_params_alias(spo_params *ps, const char *name, const char *alias);
int spo_params_unit_dims(spo_params *ps, const char *name);
int spo_params_ignore(spo_params *ps, const char *prefix);
/* Fill with N(0, std^2) (Philox, seeded) — for spo-mkmodel and tests. */
int spo_params_randn(spo_params *ps, uint64_t seed, float std);
/* Copy host data into one parameter. */
int spo_params_set(spo_params *ps, const char *name, const float *host, size_t n);

#endif

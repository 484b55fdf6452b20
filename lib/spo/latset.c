/* latset.c — pick and read the latents of a state, pool or pairs file (see
 * latset.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spo/latset.h"
#include "spo/loopfile.h"

typedef struct {
    const char *schema, *what, *dataset;
    int per_child; /* [B, K, C, h, w] */
} choice;

/* The first entry of each schema is its default. */
static const choice choices[] = {
    {"state", "latents", "/latents", 0}, {"pool", "x0", "/x0_hat", 1},  {"pool", "children", "/children", 1},
    {"pool", "parent", "/parent", 0},    {"pairs", "win", "/win", 0},   {"pairs", "lose", "/lose", 0},
    {"pairs", "parent", "/parent", 0},
};
#define NCHOICE (int)(sizeof choices / sizeof choices[0])

static int64_t attr_int(const spo_h5 *f, const char *name)
{
    int64_t v;
    return spo_h5_get_attr_int(f, NULL, name, &v) ? -1 : v;
}

/* The file's schema, checked with C bound; its name without version in s->schema. */
static int check_schema(spo_latset *s, const spo_h5 *f, int C)
{
    spo_fileinfo fi;
    int rc = spo_h5_listing(f, &fi, 1);
    if (rc) return rc;
    char tag[64];
    snprintf(tag, sizeof tag, "%s", fi.schema);
    char *slash = strchr(tag, '/');
    if (slash) *slash = 0;
    if (!fi.schema[0])
        rc = spo_err(SPO_EINVAL, "%s: no spo_schema attribute (expected a state/1, pool/1 or pairs/1 file)",
                     spo_h5_path(f));
    else if (strcmp(tag, "state") && strcmp(tag, "pool") && strcmp(tag, "pairs"))
        rc = spo_err(SPO_EINVAL, "%s: schema %s has no latents to decode (expected state/1, pool/1 or pairs/1)",
                     spo_h5_path(f), fi.schema);
    else {
        const spo_schema *sc = spo_schema_builtin(fi.schema);
        spo_dimbind pre[] = {{"C", C}, {NULL, 0}};
        if (!sc) rc = spo_err(SPO_EINVAL, "%s: unknown schema version '%s'", spo_h5_path(f), fi.schema);
        else rc = spo_schema_check(sc, &fi, spo_h5_path(f), pre);
        snprintf(s->schema, sizeof s->schema, "%.15s", tag);
    }
    spo_fileinfo_free(&fi);
    return rc;
}

static const choice *pick(const spo_latset *s, const spo_h5 *f, const char *what)
{
    for (int i = 0; i < NCHOICE; i++)
        if (!strcmp(choices[i].schema, s->schema) && (!what || !strcmp(choices[i].what, what))) return &choices[i];
    char list[128] = "";
    for (int i = 0; i < NCHOICE; i++)
        if (!strcmp(choices[i].schema, s->schema))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", choices[i].what);
    spo_err(SPO_EINVAL, "%s: --what %s: a %s file has %s", spo_h5_path(f), what, s->schema, list);
    return NULL;
}

/* prompt id, seed, step and timestep of each row */
static int read_rows(spo_latset *s, const spo_h5 *f, int is_child, const char *tattr)
{
    int n = s->rows, rc = SPO_OK;
    if (!strcmp(s->schema, "pairs")) {
        int64_t *key = malloc((size_t)n * 4 * sizeof *key);
        int32_t *t = malloc((size_t)n * sizeof *t);
        if (!key || !t) rc = spo_err(SPO_EIO, "out of memory");
        if (!rc) rc = spo_h5_read_i64(f, "/key", key, (size_t)n * 4);
        if (!rc) rc = spo_h5_read_i32(f, "/timestep", t, (size_t)n);
        int64_t dt = s->num_steps > 0 ? 1000 / s->num_steps : 0;
        for (int i = 0; i < n && !rc; i++) {
            s->seed[i] = key[i * 4], s->prompt_id[i] = key[i * 4 + 1], s->step[i] = key[i * 4 + 2];
            s->timestep[i] = is_child ? (t[i] - dt > 0 ? t[i] - dt : 0) : t[i];
        }
        free(key);
        free(t);
        return rc;
    }
    if ((rc = spo_h5_read_i64(f, "/prompt_id", s->prompt_id, (size_t)n))) return rc;
    int64_t seed = attr_int(f, "seed"), step = attr_int(f, "step");
    int64_t t = attr_int(f, tattr);
    for (int i = 0; i < n; i++) s->seed[i] = seed, s->step[i] = step, s->timestep[i] = t < 0 ? 0 : t;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && s->prompt_id[i] == s->prompt_id[j]) s->dup[i] = 1;
    return SPO_OK;
}

int spo_latset_read(spo_latset *s, const spo_h5 *f, const char *what, int latent_channels)
{
    memset(s, 0, sizeof *s);
    int rc = check_schema(s, f, latent_channels);
    if (rc) return rc;
    const choice *ch = pick(s, f, what);
    if (!ch) return SPO_EINVAL;
    snprintf(s->what, sizeof s->what, "%s", ch->what);
    snprintf(s->dataset, sizeof s->dataset, "%s", ch->dataset);
    spo_dsinfo d;
    if ((rc = spo_h5_info(f, ch->dataset, &d))) return rc;
    /* sizes from the file, checked before they are cast or allocated */
    if ((rc = spo_size_check(spo_h5_path(f), ch->dataset, d.shape, d.ndim, 0, sizeof(float), NULL)) ||
        (rc = spo_storage_check(f, ch->dataset)) ||
        (rc = spo_dim_check(spo_h5_path(f), ch->dataset, d.shape[0], 0, INT32_MAX)))
        return rc;
    int k = ch->per_child;
    s->rows = (int)d.shape[0], s->cols = k ? (int)d.shape[1] : 1;
    s->C = (int)d.shape[1 + k], s->h = (int)d.shape[2 + k], s->w = (int)d.shape[3 + k];
    if (s->rows <= 0 || s->cols <= 0) return spo_err(SPO_EINVAL, "%s: %s is empty", spo_h5_path(f), ch->dataset);
    s->num_steps = attr_int(f, "num_steps");
    spo_h5_get_attr_str(f, NULL, "model_id", s->model_id, sizeof s->model_id);
    spo_h5_get_attr_str(f, NULL, "lora_id", s->lora_id, sizeof s->lora_id);
    spo_err_clear();
    size_t n = (size_t)s->rows * s->cols * s->C * s->h * s->w, r = (size_t)s->rows;
    s->latents = malloc(n * sizeof *s->latents);
    int64_t *col = malloc(4 * r * sizeof *col); /* the four int64 columns, one block */
    s->dup = calloc(r, sizeof *s->dup);
    if (col) s->prompt_id = col, s->seed = col + r, s->step = col + 2 * r, s->timestep = col + 3 * r;
    if (!s->latents || !col || !s->dup) rc = spo_err(SPO_EIO, "out of memory (%zu latent values)", n);
    if (!rc) rc = spo_h5_read_f32(f, ch->dataset, s->latents, n);
    /* a pool's x0_hat is at its chains' ends (end_timestep, with inner steps) */
    int is_child = strcmp(ch->what, "parent") && strcmp(ch->what, "latents");
    const char *tattr = !is_child ? "timestep" : "child_timestep";
    if (!strcmp(ch->what, "x0") && spo_h5_has_attr(f, NULL, "end_timestep")) tattr = "end_timestep";
    if (!rc) rc = read_rows(s, f, is_child, tattr);
    if (rc) spo_latset_free(s);
    return rc;
}

void spo_latset_name(const spo_latset *s, int i, char *buf, size_t n)
{
    int r = i / s->cols, k = i % s->cols;
    long long id = (long long)s->prompt_id[r];
    char dup[24] = "";
    if (s->dup[r]) snprintf(dup, sizeof dup, "_r%d", r);
    if (!strcmp(s->schema, "pairs")) snprintf(buf, n, "p%lld_n%d_%s.png", id, r, s->what);
    else if (!strcmp(s->what, "x0") || !strcmp(s->what, "children"))
        snprintf(buf, n, "p%lld_k%d%s.png", id, k, dup);
    else snprintf(buf, n, "p%lld%s.png", id, dup);
}

void spo_latset_free(spo_latset *s)
{
    free(s->latents);
    free(s->prompt_id); /* and seed, step, timestep: one block */
    free(s->dup);
    memset(s, 0, sizeof *s);
}

/* modeldir.c — diffusers model directories (see modeldir.h). */
#include "io/modeldir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct spo_modeldir {
    char *dir;
    cJSON *index;          /* model_index.json */
    const cJSON **comp;    /* present components: items of index */
    int n;
};

/* 1: a regular file, 0: absent, -1: error (spo_err set). */
static int is_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0) return S_ISREG(sb.st_mode);
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
    return -1;
}

static int join(char *buf, size_t n, const char *a, const char *b, const char *c)
{
    int k = c ? snprintf(buf, n, "%s/%s/%s", a, b, c) : snprintf(buf, n, "%s/%s", a, b);
    return k >= 0 && (size_t)k < n ? SPO_OK : spo_err(SPO_EINVAL, "%s/%s: path too long", a, b);
}

void spo_md_close(spo_modeldir *md)
{
    if (!md) return;
    cJSON_Delete(md->index);
    free(md->comp), free(md->dir), free(md);
}

int spo_md_open(spo_modeldir **out, const char *dir)
{
    char path[4096];
    *out = NULL;
    int rc = join(path, sizeof path, dir, "model_index.json", NULL);
    if (rc) return rc;
    int f = is_file(path);
    if (f < 0) return SPO_EIO;
    if (!f) return spo_err(SPO_EINVAL, "%s: not a diffusers model directory (no model_index.json)", dir);
    spo_modeldir *md = calloc(1, sizeof *md);
    if (!md || !(md->dir = strdup(dir))) {
        free(md);
        return spo_err(SPO_EIO, "out of memory");
    }
    if ((rc = spo_cfg_load(&md->index, path))) goto fail;
    md->comp = malloc((cJSON_GetArraySize(md->index) + 1) * sizeof *md->comp);
    if (!md->comp) { rc = spo_err(SPO_EIO, "out of memory"); goto fail; }
    const cJSON *e;
    cJSON_ArrayForEach(e, md->index) {
        if (e->string[0] == '_' || !cJSON_IsArray(e)) continue; /* _class_name, requires_safety_checker, .. */
        const cJSON *lib = cJSON_GetArrayItem(e, 0), *cls = cJSON_GetArrayItem(e, 1);
        if (cJSON_GetArraySize(e) != 2 || !(cJSON_IsString(lib) || cJSON_IsNull(lib)) ||
            !(cJSON_IsString(cls) || cJSON_IsNull(cls))) {
            rc = spo_err(SPO_EINVAL, "%s: '%s' must be [library, class]", path, e->string);
            goto fail;
        }
        if (cJSON_IsString(cls)) md->comp[md->n++] = e;
    }
    *out = md;
    return SPO_OK;
fail:
    spo_md_close(md);
    return rc;
}

const char *spo_md_dir(const spo_modeldir *md) { return md->dir; }
const cJSON *spo_md_index(const spo_modeldir *md) { return md->index; }
int spo_md_count(const spo_modeldir *md) { return md->n; }

const char *spo_md_component(const spo_modeldir *md, int i)
{
    return i >= 0 && i < md->n ? md->comp[i]->string : NULL;
}

const char *spo_md_class(const spo_modeldir *md, const char *part)
{
    for (int i = 0; i < md->n; i++)
        if (!strcmp(md->comp[i]->string, part)) return cJSON_GetArrayItem(md->comp[i], 1)->valuestring;
    return NULL;
}

/* The part must be a plain name listed as present in model_index.json. */
static int check_part(const spo_modeldir *md, const char *part)
{
    if (!*part || strchr(part, '/') || !strcmp(part, ".") || !strcmp(part, ".."))
        return spo_err(SPO_EINVAL, "%s: invalid component name '%s'", md->dir, part);
    if (!spo_md_class(md, part))
        return spo_err(SPO_EINVAL, "%s/model_index.json: no component '%s'", md->dir, part);
    return SPO_OK;
}

/* First existing file among names in dir/part, into buf; 0 when none. */
static int first_file(const spo_modeldir *md, const char *part, const char *const *names, char *buf, size_t n,
                      int *found)
{
    *found = 0;
    for (int i = 0; names[i]; i++) {
        int rc = join(buf, n, md->dir, part, names[i]);
        if (rc) return rc;
        int f = is_file(buf);
        if (f < 0) return SPO_EIO;
        if (f) {
            *found = 1;
            return SPO_OK;
        }
    }
    return SPO_OK;
}

int spo_md_config(const spo_modeldir *md, const char *part, cJSON **cfg)
{
    static const char *const names[] = {"config.json", "scheduler_config.json", "tokenizer_config.json", NULL};
    char path[4096];
    int found, rc;
    *cfg = NULL;
    if ((rc = check_part(md, part)) || (rc = first_file(md, part, names, path, sizeof path, &found))) return rc;
    if (!found) return spo_err(SPO_EINVAL, "%s/%s: no config.json", md->dir, part);
    return spo_cfg_load(cfg, path);
}

int spo_md_weights(const spo_modeldir *md, const char *part, char *buf, size_t n)
{
    static const char *const names[] = {"diffusion_pytorch_model.safetensors", "model.safetensors",
                                        "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors", NULL};
    static const char *const bins[] = {"diffusion_pytorch_model.bin", "pytorch_model.bin",
                                       "diffusion_pytorch_model.fp16.bin", "pytorch_model.fp16.bin", NULL};
    int found, rc;
    if ((rc = check_part(md, part)) || (rc = first_file(md, part, names, buf, n, &found))) return rc;
    if (found) return SPO_OK;
    if ((rc = first_file(md, part, bins, buf, n, &found))) return rc;
    if (found)
        return spo_err(SPO_EINVAL, "%s/%s: only PyTorch .bin weights (%s); convert them to safetensors", md->dir,
                       part, strrchr(buf, '/') + 1);
    return spo_err(SPO_EINVAL,
                   "%s/%s: no weights file (diffusion_pytorch_model.safetensors, model.safetensors or their .fp16 "
                   "variants)",
                   md->dir, part);
}

int spo_md_file(const spo_modeldir *md, const char *part, const char *file, char *buf, size_t n)
{
    int rc = check_part(md, part);
    if (rc || (rc = join(buf, n, md->dir, part, file))) return rc;
    int f = is_file(buf);
    if (f < 0) return SPO_EIO;
    return f ? SPO_OK : spo_err(SPO_EINVAL, "%s: no such file", buf);
}

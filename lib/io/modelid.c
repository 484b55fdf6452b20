/* modelid.c — the model_id of a diffusers directory (see modelid.h). */
#include "io/modelid.h"
#include "core/infile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/modeldir.h"

#define SAMPLE 65536

uint64_t spo_fnv1a64(uint64_t h, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t piece(uint64_t h, const char *label, const void *buf, size_t len)
{
    unsigned char n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (unsigned char)((uint64_t)len >> (8 * i));
    h = spo_fnv1a64(h, label, strlen(label) + 1);
    h = spo_fnv1a64(h, n8, 8);
    return spo_fnv1a64(h, buf, len);
}

/* read len bytes at off of fp into a new buffer */
static int read_at(FILE *fp, const char *path, long long off, size_t len, unsigned char **out)
{
    unsigned char *b = malloc(len ? len : 1);
    if (!b) return spo_err(SPO_EIO, "out of memory");
    if (fseeko(fp, (off_t)off, SEEK_SET) || fread(b, 1, len, fp) != len) {
        free(b);
        return spo_err(ferror(fp) ? SPO_EIO : SPO_EINVAL, "%s: %s", path,
                       ferror(fp) ? strerror(errno) : "truncated safetensors file");
    }
    *out = b;
    return SPO_OK;
}

/* hash the whole of a small file */
static int hash_file(uint64_t *h, const char *label, const char *path)
{
    FILE *fp;
    int orc = spo_fopen_in(&fp, path);
    if (orc) return orc;
    int rc = SPO_OK;
    unsigned char *b = NULL;
    long long n;
    if (fseeko(fp, 0, SEEK_END) || (n = ftello(fp)) < 0) rc = spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
    else if (n > 16 << 20) rc = spo_err(SPO_EINVAL, "%s: larger than 16 MiB", path);
    else if (!(rc = read_at(fp, path, 0, (size_t)n, &b))) *h = piece(*h, label, b, (size_t)n);
    free(b);
    fclose(fp);
    return rc;
}

/* header, first and last SAMPLE bytes of the data of a safetensors file */
static int hash_weights(uint64_t *h, const char *label, const char *path)
{
    FILE *fp;
    int orc = spo_fopen_in(&fp, path);
    if (orc) return orc;
    unsigned char *b = NULL, n8[8];
    long long size = -1;
    uint64_t hl = 0;
    int rc = SPO_OK;
    if (fseeko(fp, 0, SEEK_END) || (size = ftello(fp)) < 0) rc = spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
    else if (size < 8 || fseeko(fp, 0, SEEK_SET) || fread(n8, 1, 8, fp) != 8)
        rc = spo_err(SPO_EINVAL, "%s: not a safetensors file", path);
    if (!rc) {
        for (int i = 0; i < 8; i++) hl |= (uint64_t)n8[i] << (8 * i);
        if (hl > 100000000 || (long long)hl > size - 8) rc = spo_err(SPO_EINVAL, "%s: not a safetensors file", path);
    }
    char lab[64];
    if (!rc && !(rc = read_at(fp, path, 8, (size_t)hl, &b))) {
        snprintf(lab, sizeof lab, "%s header", label);
        *h = piece(*h, lab, b, (size_t)hl);
        free(b);
        b = NULL;
    }
    long long data = 8 + (long long)hl, dlen = size - data;
    size_t k = dlen < SAMPLE ? (size_t)dlen : SAMPLE;
    if (!rc && !(rc = read_at(fp, path, data, k, &b))) {
        snprintf(lab, sizeof lab, "%s head", label);
        *h = piece(*h, lab, b, k);
        free(b);
        b = NULL;
    }
    if (!rc && !(rc = read_at(fp, path, size - (long long)k, k, &b))) {
        snprintf(lab, sizeof lab, "%s tail", label);
        *h = piece(*h, lab, b, k);
    }
    free(b);
    fclose(fp);
    return rc;
}

int spo_model_id(const char *model_dir, char *out, size_t n)
{
    if (n < SPO_MODEL_ID_LEN) return spo_err(SPO_EINVAL, "model id buffer too small");
    spo_modeldir *md;
    int rc = spo_md_open(&md, model_dir);
    if (rc) return rc;
    uint64_t h = SPO_FNV_INIT;
    static const char *const parts[] = {"text_encoder", "unet", "text_encoder_2"};
    char path[4096], lab[64];
    int np = spo_md_class(md, "text_encoder_2") ? 3 : 2; /* SDXL's second encoder */
    for (int i = 0; i < np && !rc; i++) {
        snprintf(lab, sizeof lab, "%s/config.json", parts[i]);
        if ((rc = spo_md_file(md, parts[i], "config.json", path, sizeof path)) ||
            (rc = hash_file(&h, lab, path)) || (rc = spo_md_weights(md, parts[i], path, sizeof path)))
            break;
        rc = hash_weights(&h, parts[i], path);
    }
    spo_md_close(md);
    if (rc) return rc;
    snprintf(out, n, "%016llx", (unsigned long long)h);
    return SPO_OK;
}

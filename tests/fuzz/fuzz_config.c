/* fuzz_config.c — libFuzzer target for model configs and weight headers.
 * Input: one byte choosing the model (0 UNet, 1 VAE, 2 CLIP text encoder,
 * modulo 3), the config.json text, a NUL byte, then the JSON header of a
 * safetensors weight file. The config goes through the library's parser;
 * when it is accepted (and its parameters fit in 64 MB: bigger ones are the
 * size checks' business, not worth allocating per input), a model folder
 * is written (config.json, the weight file: the header with data_offsets
 * as given, zero data) and loaded with the real loader on the CPU, which
 * checks every tensor's name and shape against the config. Any error must
 * leave a one-line message without control bytes. Build and run with
 * `sh tests/fuzz/run.sh SECONDS config`; seeds in tests/fuzz/corpus/config
 * are the tiny-sd configs with their weights' headers. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "fuzz_msg.h"
#include "nn/clip_text.h"
#include "nn/unet.h"
#include "nn/vae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FLOATS ((size_t)16 << 20)

static char dir[64];
static spo_dev *cpu;

static void cleanup(void)
{
    char p[128];
    static const char *const names[] = {"config.json", "diffusion_pytorch_model.safetensors", "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static size_t vae_floats(const spo_vae_config *c)
{
    size_t s = 0;
    for (int i = 0; i < c->nblocks; i++) s += (size_t)(c->layers_per_block + 2) * 2 * 9 * c->ch[i] * c->ch[i];
    return s + (size_t)9 * c->ch[c->nblocks - 1] * (c->latent_channels + 16) + (size_t)9 * c->ch[0] * c->out_channels;
}

static size_t clip_floats(const spo_clip_text_config *c)
{
    return (size_t)c->dim * ((size_t)c->vocab + c->max_pos) +
           (size_t)c->layers * ((size_t)4 * c->dim * c->dim + (size_t)2 * c->dim * c->inter);
}

/* the parameter count of an accepted config, or 0 when rejected */
static size_t parse(int kind, const char *text, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(text, n);
    if (!j) return 0;
    size_t floats = 0;
    if (kind == 0) {
        spo_unet_config c;
        spo_unet *u;
        if (!spo_unet_config_from_json(&c, j) && !spo_unet_create(&u, &c, NULL)) {
            floats = spo_unet_params(u)->total + 1;
            spo_unet_free(u);
        } else
            check_msg();
    } else if (kind == 1) {
        spo_vae_config c;
        if (!spo_vae_config_from_json(&c, j)) floats = c.nblocks > 0 ? vae_floats(&c) + 1 : 1;
        else check_msg();
    } else {
        spo_clip_text_config c;
        if (!spo_clip_text_config_parse(&c, j)) floats = clip_floats(&c) + 1;
        else check_msg();
    }
    cJSON_Delete(j);
    return floats;
}

/* end of the data the header's data_offsets ask for, at most 64 MB */
static size_t data_end(const char *h, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(h, n), *t;
    size_t end = 0;
    cJSON_ArrayForEach(t, j)
    {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        cJSON *b = cJSON_GetArrayItem(o, 1);
        if (cJSON_IsNumber(b) && b->valuedouble > 0 && b->valuedouble < (double)(64 << 20) &&
            (size_t)b->valuedouble > end)
            end = (size_t)b->valuedouble;
    }
    cJSON_Delete(j);
    return end;
}

static int put(const char *name, const void *a, size_t an, const void *b, size_t bn, size_t total)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    int bad = (an && write(fd, a, an) != (ssize_t)an) || (bn && write(fd, b, bn) != (ssize_t)bn) ||
              (total > an + bn && ftruncate(fd, (off_t)total) != 0);
    return close(fd) || bad ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (!cpu) {
        strcpy(dir, "/tmp/spo-fuzz-config-XXXXXX");
        if (!mkdtemp(dir) || spo_dev_open(&cpu, SPO_DEV_CPU, 1)) abort();
        atexit(cleanup);
    }
    int kind = data[0] % 3;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    const char *z = memchr(text, 0, n);
    size_t tn = z ? (size_t)(z - text) : n;
    size_t floats = parse(kind, text, tn);
    if (!floats || floats > MAX_FLOATS || !z) return 0;
    const char *h = z + 1;
    size_t hn = n - tn - 1;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    const char *wname = kind == 2 ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
    /* the header after its length, then zero data up to the last offset */
    if (put("config.json", text, tn, NULL, 0, 0) || put(wname, len8, 8, h, hn, 8 + hn + data_end(h, hn))) abort();
    int rc;
    if (kind == 0) {
        spo_unet *u;
        if (!(rc = spo_unet_load(&u, dir, cpu))) spo_unet_free(u);
    } else if (kind == 1) {
        spo_vae *v;
        if (!(rc = spo_vae_load(&v, dir, cpu))) spo_vae_free(v);
    } else {
        spo_clip_text *m;
        if (!(rc = spo_clip_text_load(&m, dir, cpu))) spo_clip_text_free(m);
    }
    if (rc) check_msg();
    return 0;
}

/* bench_nn.c — CPU time of one SD v1.5-size VAE decode (latents 1x4x64x64
 * -> 1x3x512x512, block_out_channels [128,256,512,512], layers_per_block 2,
 * 32 groups) and one CLIP ViT-L text forward (768 wide, 12 layers, 12 heads,
 * 3072 MLP, vocab 49408, 77 tokens), random weights.
 *
 *   make -j2 lib && cc -O2 -std=c11 -D_GNU_SOURCE -Ilib tests/bench/bench_nn.c build/rel/libspo.a \
 *      $(pkg-config --libs hdf5-serial libarchive libpng libcjson openblas) -lm -pthread -o build/bench_nn
 *   (when the library was built with nvcc, add
 *    -L/usr/local/cuda/lib64 -Wl,-rpath,/usr/local/cuda/lib64 -lcublas -lcudart -lstdc++)
 *   build/bench_nn [threads] [vae|clip]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nn/clip_text.h"
#include "nn/vae.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_nn: %s: %s\n", what, spo_errmsg());
    return 1;
}

static int bench_vae(spo_dev *dev)
{
    spo_vae_config c = {.nblocks = 4, .ch = {128, 256, 512, 512}, .layers_per_block = 2, .latent_channels = 4,
                        .out_channels = 3, .groups = 32, .mid_attn = 1, .scaling_factor = 0.18215f};
    spo_vae *v;
    if (spo_vae_create(&v, &c, dev) || spo_vae_randn(v, 1, 0.02f)) return die("vae");
    float *lat = malloc(4 * 64 * 64 * sizeof *lat), *img = malloc(3 * 512 * 512 * sizeof *img);
    for (int i = 0; i < 4 * 64 * 64; i++) lat[i] = (float)((i * 7919) % 200 - 100) / 100.0f;
    double t0 = now(), c0 = cpu();
    if (spo_vae_decode(v, img, lat, 1, 64, 64)) return die("vae decode");
    printf("vae decode 1x4x64x64 -> 1x3x512x512: %.2f s wall, %.2f s cpu, img[0] %g\n", now() - t0, cpu() - c0,
           img[0]);
    free(lat);
    free(img);
    spo_vae_free(v);
    return 0;
}

static int bench_clip(spo_dev *dev)
{
    spo_clip_text_config c = {.vocab = 49408, .dim = 768, .inter = 3072, .layers = 12, .heads = 12, .max_pos = 77,
                              .act = SPO_ACT_QUICK_GELU, .eps = 1e-5f, .eos = 2};
    spo_clip_text *m;
    if (spo_clip_text_create(&m, &c, dev) || spo_clip_text_randn(m, 1, 0.02f)) return die("clip");
    int32_t ids[77];
    for (int i = 0; i < 77; i++) ids[i] = i < 10 ? 320 + i * 37 : 49407;
    ids[0] = 49406;
    float *hid = malloc(77 * 768 * sizeof *hid), pooled[768];
    double t0 = now(), c0 = cpu();
    if (spo_clip_text_forward(m, hid, pooled, ids, 1, 77)) return die("clip forward");
    printf("clip text forward 1x77 (ViT-L text): %.3f s wall, %.3f s cpu\n", now() - t0, cpu() - c0);
    free(hid);
    spo_clip_text_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *which = argc > 2 ? argv[2] : "all";
    spo_dev *dev;
    if (spo_dev_open(&dev, SPO_DEV_CPU, threads)) return die("device");
    int rc = 0;
    if (strcmp(which, "clip")) rc |= bench_vae(dev);
    if (strcmp(which, "vae")) rc |= bench_clip(dev);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("max RSS %.0f MB\n", ru.ru_maxrss / 1024.0);
    spo_dev_close(dev);
    return rc;
}

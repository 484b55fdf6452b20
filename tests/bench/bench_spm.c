/* bench_spm.c — time of the full-size step-aware preference model
 * (PickScore_v1 / ViT-H/14 shapes: vision 1280 x 32 layers x 16 heads,
 * 224 px, patch 14; text 1024 x 24 x 16; projection 1024) with random
 * weights: image embeddings of a batch of 512x512 images in [-1, 1] (the
 * VAE's output size; preprocessing included) and text embeddings. Or, with
 * a clip directory and an SPM weight file, the same on that model.
 *
 *   make -j2 lib && cc -O2 -std=c11 -D_GNU_SOURCE -Ilib tests/bench/bench_spm.c build/rel/libspo.a \
 *      $(pkg-config --libs hdf5-serial libarchive libpng libcjson openblas) -lm -pthread -o build/bench_spm
 *   (a CUDA build of libspo.a also needs -L/usr/local/cuda/lib64 -lcublas -lcudart -lstdc++)
 *   build/bench_spm [threads [images [clip_dir spm_bin [out.f32]]]]
 *
 * OpenBLAS picks its slow generic (Prescott) sgemm on CPUs it does not
 * recognise (this VM's Xeon with AVX-512): OPENBLAS_CORETYPE=SkylakeX is
 * 3-4x faster there.
 *
 * out.f32 receives the image embeddings then the text embeddings (raw
 * float32), for a comparison with PyTorch on the same inputs: image i is
 * sin(0.001 k) over its elements k, timestep 951 - 50 i; prompt i is ids
 * 320 + (k % 50) at positions k < 10 of row i (k counted over the whole
 * batch), eos after. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "nn/spm.h"

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
    fprintf(stderr, "bench_spm: %s: %s\n", what, spo_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 2;
    spo_dev *dev;
    spo_spm *m;
    if (n < 1) n = 1;
    if (spo_dev_open(&dev, SPO_DEV_CPU, threads)) return die("device");
    double t0 = now();
    if (argc > 4) {
        if (spo_spm_load(&m, argv[3], argv[4], dev)) return die("load");
    } else {
        spo_spm_config c = {.width = 1280, .inter = 5120, .layers = 32, .heads = 16, .image_size = 224, .patch = 14,
                            .act = SPO_ACT_GELU, .eps = 1e-5f, .proj = 1024, .freq = 256};
        c.text = (spo_clip_text_config){.vocab = 49408, .dim = 1024, .inter = 4096, .layers = 24, .heads = 16,
                                        .max_pos = 77, .act = SPO_ACT_GELU, .eps = 1e-5f, .eos = 49407};
        if (spo_spm_create(&m, &c, dev) || spo_spm_randn(m, 1, 0.02f)) return die("create");
    }
    printf("model ready in %.1f s\n", now() - t0);
    const spo_spm_config *c = spo_spm_cfg(m);
    int H = 512, P = c->proj;
    float *img = malloc(sizeof(float) * n * 3 * H * H), *ts = malloc(sizeof(float) * n);
    float *emb = malloc(sizeof(float) * n * P), *txt = malloc(sizeof(float) * n * P), *sc = malloc(sizeof(float) * n);
    int32_t *ids = malloc(sizeof(int32_t) * n * c->text.max_pos);
    for (size_t i = 0; i < (size_t)n * 3 * H * H; i++) img[i] = sinf(0.001f * i);
    for (int i = 0; i < n; i++) ts[i] = 951 - 50 * i;
    for (int i = 0; i < n * c->text.max_pos; i++) ids[i] = i % c->text.max_pos < 10 ? 320 + i % 50 : c->text.eos;
    double w = now(), u = cpu();
    if (spo_spm_image(m, img, n, H, H, ts, emb)) return die("image");
    double wi = now() - w, ui = cpu() - u;
    w = now(), u = cpu();
    if (spo_spm_text(m, ids, n, txt)) return die("text");
    double wt = now() - w, ut = cpu() - u;
    if (spo_spm_score(m, emb, txt, n, sc)) return die("score");
    if (argc > 5) {
        FILE *f = fopen(argv[5], "wb");
        if (!f || fwrite(emb, sizeof(float), (size_t)n * P, f) != (size_t)n * P ||
            fwrite(txt, sizeof(float), (size_t)n * P, f) != (size_t)n * P || fclose(f))
            return die("write");
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%d images 512x512 -> %d px: %.2f s wall (%.2f s/image), %.2f s CPU\n", n, c->image_size, wi, wi / n, ui);
    printf("%d prompts: %.2f s wall, %.2f s CPU; score[0] %.4f; max RSS %.2f GB\n", n, wt, ut, sc[0],
           ru.ru_maxrss / 1048576.0);
    free(img), free(ts), free(emb), free(txt), free(sc), free(ids);
    spo_spm_free(m);
    spo_dev_close(dev);
    return 0;
}

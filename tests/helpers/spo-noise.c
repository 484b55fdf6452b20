/* spo-noise — every random number one SPO sampling pass draws, computed by
 * the same library functions the tools call, so a reference implementation
 * (tests/reference/sampling_reference.py) needs no generator of its own:
 *
 *   spo-noise --seed N --steps S -K K --plain P --ids 10,11,12 --latent CxHxW
 *             [-f] -o noise.h5
 *
 * Writes (no schema; attributes seed, steps, K, plain):
 *   /prompt_id  i64 [B]          the ids, in the order given
 *   /init       f32 [B,C,h,w]    x_T = spo_init_noise(seed, id) (spo-init)
 *   /z          f32 [S,B,K,C,h,w] z of child k at step s =
 *                                spo_normal_fill(seed, id, s, k) (spo-pool).
 *                                PADDED: plain steps (s < P) draw one child
 *                                per prompt, k = 0, so only z[s,:,0] is
 *                                used there; z[s,:,1..K-1] are the streams
 *                                a pool would draw and are unused.
 *   /chosen     i32 [S,B]        the resampled child of step s =
 *                                spo_choose_child(seed, id, s, s < P ? 1 : K)
 *                                (spo-resample; 0 on plain steps)
 * Exit 0 done, 2 bad call, 1 write failure. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5io.h"
#include "spo/loop_state.h"
#include "core/philox.h"
#include "spo/resample.h"

#define MAXB 1024

static void usage_die(const char *msg)
{
    fprintf(stderr, "spo-noise: %s\nusage: spo-noise --seed N --steps S -K K --plain P --ids 10,11,12 "
                    "--latent CxHxW [-f] -o noise.h5\n", msg);
    exit(2);
}

static long num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "spo-noise: %s '%s' must be an integer %ld..%ld\n", what, s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"seed", 1, 0, 's'},   {"steps", 1, 0, 'S'},  {"children", 1, 0, 'K'},
                                       {"plain", 1, 0, 'p'},  {"ids", 1, 0, 'i'},    {"latent", 1, 0, 'l'},
                                       {"output", 1, 0, 'o'}, {"force", 0, 0, 'f'}, {0, 0, 0, 0}};
    long long seed = 0;
    int S = 20, K = 4, P = 4, C = 4, h = 16, w = 16, B = 0, force = 0, c;
    int64_t ids[MAXB];
    const char *out = NULL, *idarg = NULL;
    while ((c = getopt_long(argc, argv, "K:o:f", lo, NULL)) != -1) {
        switch (c) {
        case 's': seed = num(optarg, 0, 0x7fffffffffffffffL, "--seed"); break;
        case 'S': S = (int)num(optarg, 1, 1000, "--steps"); break;
        case 'K': K = (int)num(optarg, 1, 64, "-K"); break;
        case 'p': P = (int)num(optarg, 0, 1000, "--plain"); break;
        case 'i': idarg = optarg; break;
        case 'l':
            if (sscanf(optarg, "%dx%dx%d", &C, &h, &w) != 3 || C < 1 || h < 1 || w < 1 || C * h * w > (1 << 24))
                usage_die("--latent takes CxHxW, e.g. 4x16x16");
            break;
        case 'o': out = optarg; break;
        case 'f': force = 1; break;
        default: usage_die("bad option");
        }
    }
    if (optind != argc) usage_die("unexpected argument");
    if (!out || !idarg) usage_die("-o and --ids are required");
    if (P >= S) usage_die("--plain must be less than --steps");
    for (const char *p = idarg; *p && B < MAXB;) {
        char buf[32];
        size_t n = strcspn(p, ",");
        if (!n || n >= sizeof buf) usage_die("--ids takes comma-separated prompt ids");
        memcpy(buf, p, n), buf[n] = 0;
        ids[B++] = num(buf, 0, 0xffffffffL, "prompt id");
        p += n + (p[n] == ',');
    }
    if (!B) usage_die("--ids is empty");

    size_t lat = (size_t)C * h * w;
    float *x = malloc((size_t)B * lat * sizeof *x), *z = malloc((size_t)S * B * K * lat * sizeof *z);
    int32_t *chosen = malloc((size_t)S * B * sizeof *chosen);
    if (!x || !z || !chosen) {
        fprintf(stderr, "spo-noise: out of memory\n");
        return 1;
    }
    for (int b = 0; b < B; b++) {
        uint32_t pid = (uint32_t)ids[b];
        spo_init_noise(x + (size_t)b * lat, lat, (uint64_t)seed, pid);
        for (int s = 0; s < S; s++) {
            for (int k = 0; k < K; k++)
                spo_normal_fill(z + (((size_t)s * B + b) * K + k) * lat, lat, (uint64_t)seed, pid, (uint32_t)s,
                                (uint32_t)k);
            chosen[s * B + b] = (int32_t)spo_choose_child((uint64_t)seed, pid, (uint32_t)s, s < P ? 1u : (uint32_t)K);
        }
    }
    spo_h5 *f;
    int64_t s1[1] = {B}, s2[2] = {S, B}, s4[4] = {B, C, h, w}, s6[6] = {S, B, K, C, h, w};
    int rc = spo_h5_create(&f, out, NULL, force);
    if (!rc && ((rc = spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, s1, ids)) ||
                (rc = spo_h5_write(f, "/init", SPO_T_F32, 4, s4, x)) ||
                (rc = spo_h5_write(f, "/z", SPO_T_F32, 6, s6, z)) ||
                (rc = spo_h5_write(f, "/chosen", SPO_T_I32, 2, s2, chosen)) ||
                (rc = spo_h5_attr_int(f, NULL, "seed", seed)) || (rc = spo_h5_attr_int(f, NULL, "steps", S)) ||
                (rc = spo_h5_attr_int(f, NULL, "K", K)) || (rc = spo_h5_attr_int(f, NULL, "plain", P))))
        spo_h5_abort(f);
    else if (!rc)
        rc = spo_h5_commit(f);
    free(x), free(z), free(chosen);
    if (rc) {
        fprintf(stderr, "spo-noise: %s\n", spo_errmsg());
        return rc == SPO_EINVAL ? 2 : 1;
    }
    return 0;
}

/* spo-fakepool — valid embeds/1, pool/1 and scores/1 files without networks,
 * for the loop tests (tests/cmd/loop.bats):
 *
 *   spo-fakepool embeds OUT ids=0,1,2 [L=7] [D=8] [model=m0] [f16=0]
 *   spo-fakepool pool   OUT ids=0,1,2 [K=4] [C=4] [h=8] [w=8] [step=5]
 *                       [num_steps=20] [seed=1] [lora=none] [eps=1]
 *                       [model=m0] [guidance=5] [eta=1]
 *   spo-fakepool scores OUT ids=0,1,2 [K=4] [step=5] [values=s00,s01,...]
 *
 * Every value is a function of the prompt id, the child and the element
 * index only, so the files of a shard hold exactly the rows of the same
 * prompts in the whole set. Scores default to
 * 20 + (0.1 + 0.15 (id mod 5)) sin(1.7 id + 2.3 k), which keeps the pairs of
 * ids 2, 3, 4 mod 5 at threshold 0.3; values= gives them explicitly (B*K
 * numbers, prompt-major). Timesteps: 951 - 50 step, children 50 less (0 at
 * the last step). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5io.h"
#include "core/prov.h"

#define MAXV 100000

static const char *opt(int argc, char **argv, const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = 3; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=') return argv[i] + n + 1;
    return def;
}

static long iopt(int argc, char **argv, const char *key, long def)
{
    const char *v = opt(argc, argv, key, NULL);
    return v ? strtol(v, NULL, 10) : def;
}

/* comma-separated numbers into v[MAXV]; returns the count */
static int64_t list(const char *s, double *v)
{
    int64_t n = 0;
    while (s && *s && n < MAXV) {
        char *end;
        v[n++] = strtod(s, &end);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

static int embeds(spo_h5 *f, int argc, char **argv, const double *ids, int64_t P)
{
    int64_t L = iopt(argc, argv, "L", 7), D = iopt(argc, argv, "D", 8);
    spo_dtype_t t = iopt(argc, argv, "f16", 0) ? SPO_T_F16 : SPO_T_F32;
    float *cond = malloc((size_t)(P * L * D + 1) * sizeof *cond), *unc = malloc((size_t)(L * D) * sizeof *unc);
    int32_t *tok = malloc((size_t)(P * L + 1) * sizeof *tok);
    int64_t *pid = malloc((size_t)(P + 1) * sizeof *pid);
    char **txt = calloc((size_t)P + 1, sizeof *txt);
    for (int64_t p = 0; p < P; p++) {
        pid[p] = (int64_t)ids[p];
        for (int64_t i = 0; i < L * D; i++) cond[p * L * D + i] = (float)sin(0.11 * (double)i + 0.9 * ids[p]);
        for (int64_t i = 0; i < L; i++) tok[p * L + i] = (int32_t)((pid[p] * 7 + i) % 100);
        txt[p] = malloc(32);
        snprintf(txt[p], 32, "prompt %lld", (long long)pid[p]);
    }
    for (int64_t i = 0; i < L * D; i++) unc[i] = (float)cos(0.05 * (double)i);
    int64_t sc[3] = {P, L, D}, su[3] = {1, L, D}, st[2] = {P, L};
    int rc = spo_h5_write(f, "/cond", t, 3, sc, cond);
    if (!rc) rc = spo_h5_write(f, "/uncond", t, 3, su, unc);
    if (!rc) rc = spo_h5_write(f, "/token_ids", SPO_T_I32, 2, st, tok);
    if (!rc) rc = spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, &P, pid);
    if (!rc) rc = spo_h5_write_strings(f, "/prompt", P, (const char *const *)txt);
    if (!rc) rc = spo_h5_attr_str(f, NULL, "model_id", opt(argc, argv, "model", "m0"));
    if (!rc) rc = spo_h5_attr_str(f, NULL, "tokenizer", "fake");
    if (!rc && opt(argc, argv, "clean", NULL)) rc = spo_h5_attr_str(f, NULL, "text_clean", opt(argc, argv, "clean", NULL));
    for (int64_t p = 0; p < P; p++) free(txt[p]);
    free(txt), free(cond), free(unc), free(tok), free(pid);
    return rc;
}

static int pool(spo_h5 *f, int argc, char **argv, const double *ids, int64_t B)
{
    int64_t K = iopt(argc, argv, "K", 4), C = iopt(argc, argv, "C", 4), h = iopt(argc, argv, "h", 8),
            w = iopt(argc, argv, "w", 8), step = iopt(argc, argv, "step", 5), ns = iopt(argc, argv, "num_steps", 20);
    int64_t n = C * h * w, t = iopt(argc, argv, "t", 951 - 50 * step), ct = step + 1 >= ns ? 0 : t - 50;
    float *par = malloc((size_t)(B * n) * sizeof *par), *pe = malloc((size_t)(B * n) * sizeof *pe);
    float *ch = malloc((size_t)(B * K * n) * sizeof *ch), *x0 = malloc((size_t)(B * K * n) * sizeof *x0);
    float *eps = malloc((size_t)(B * K * n) * sizeof *eps);
    int64_t *pid = malloc((size_t)(B + 1) * sizeof *pid);
    for (int64_t b = 0; b < B; b++) {
        pid[b] = (int64_t)ids[b];
        for (int64_t i = 0; i < n; i++) {
            par[b * n + i] = (float)sin(0.37 * (double)i + 1.3 * ids[b]);
            pe[b * n + i] = (float)cos(0.21 * (double)i + 1.3 * ids[b]);
            for (int64_t k = 0; k < K; k++) {
                size_t j = (size_t)((b * K + k) * n + i);
                ch[j] = (float)sin(0.37 * (double)i + 1.3 * ids[b] + 0.7 * (double)(k + 1));
                eps[j] = (float)cos(0.29 * (double)i + 1.3 * ids[b] + 0.5 * (double)(k + 1));
                x0[j] = 0.5f * ch[j];
            }
        }
    }
    int64_t s4[4] = {B, C, h, w}, s5[5] = {B, K, C, h, w};
    int rc = spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, &B, pid);
    if (!rc) rc = spo_h5_write(f, "/parent", SPO_T_F32, 4, s4, par);
    if (!rc) rc = spo_h5_write(f, "/parent_eps", SPO_T_F32, 4, s4, pe);
    if (!rc) rc = spo_h5_write(f, "/children", SPO_T_F32, 5, s5, ch);
    if (!rc) rc = spo_h5_write(f, "/x0_hat", SPO_T_F32, 5, s5, x0);
    if (!rc && iopt(argc, argv, "eps", 1)) rc = spo_h5_write(f, "/eps", SPO_T_F32, 5, s5, eps);
    if (!rc) rc = spo_h5_attr_str(f, NULL, "model_id", opt(argc, argv, "model", "m0"));
    if (!rc) rc = spo_h5_attr_str(f, NULL, "lora_id", opt(argc, argv, "lora", "none"));
    if (!rc) rc = spo_h5_attr_int(f, NULL, "seed", iopt(argc, argv, "seed", 1));
    if (!rc) rc = spo_h5_attr_int(f, NULL, "step", step);
    if (!rc) rc = spo_h5_attr_int(f, NULL, "num_steps", ns);
    if (!rc) rc = spo_h5_attr_int(f, NULL, "timestep", t);
    if (!rc) rc = spo_h5_attr_int(f, NULL, "child_timestep", ct);
    if (!rc) rc = spo_h5_attr_float(f, NULL, "guidance", strtod(opt(argc, argv, "guidance", "5"), NULL));
    if (!rc) rc = spo_h5_attr_float(f, NULL, "eta", strtod(opt(argc, argv, "eta", "1"), NULL));
    free(par), free(pe), free(ch), free(x0), free(eps), free(pid);
    return rc;
}

static int scores(spo_h5 *f, int argc, char **argv, const double *ids, int64_t B)
{
    int64_t K = iopt(argc, argv, "K", 4), step = iopt(argc, argv, "step", 5);
    static double v[MAXV];
    int64_t nv = list(opt(argc, argv, "values", NULL), v);
    if (nv && nv != B * K) return spo_err(SPO_EINVAL, "values= has %lld numbers, expected %lld", (long long)nv,
                                          (long long)(B * K));
    float *s = malloc((size_t)(B * K + 1) * sizeof *s);
    int64_t *pid = malloc((size_t)(B + 1) * sizeof *pid);
    for (int64_t b = 0; b < B; b++) {
        pid[b] = (int64_t)ids[b];
        for (int64_t k = 0; k < K; k++)
            s[b * K + k] = nv ? (float)v[b * K + k] : (float)(20 + (0.1 + 0.15 * fmod(ids[b], 5)) * sin(1.7 * ids[b] + 2.3 * (double)k));
    }
    int64_t sh[2] = {B, K};
    int rc = spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, &B, pid);
    if (!rc) rc = spo_h5_write(f, "/scores", SPO_T_F32, 2, sh, s);
    if (!rc) rc = spo_h5_attr_str(f, NULL, "scorer", "fake");
    if (!rc) rc = spo_h5_attr_int(f, NULL, "step", step);
    if (!rc) rc = spo_h5_attr_int(f, NULL, "timestep", 0);
    free(s), free(pid);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spo-fakepool embeds|pool|scores OUT ids=0,1,... [key=value ...]\n");
        return 2;
    }
    spo_prov_set_cmdline(argc, argv);
    static double ids[MAXV];
    int64_t n = list(opt(argc, argv, "ids", NULL), ids);
    const char *kind = argv[1];
    const char *schema = !strcmp(kind, "embeds") ? "embeds/1" : !strcmp(kind, "pool") ? "pool/1"
                       : !strcmp(kind, "scores") ? "scores/1" : NULL;
    if (!schema || n < 1) {
        fprintf(stderr, "spo-fakepool: unknown kind '%s' or no ids=\n", kind);
        return 2;
    }
    spo_h5 *f;
    int rc = spo_h5_create(&f, argv[2], schema, 1);
    if (!rc) {
        rc = kind[0] == 'e' ? embeds(f, argc, argv, ids, n) : kind[0] == 'p' ? pool(f, argc, argv, ids, n)
                                                                             : scores(f, argc, argv, ids, n);
        if (rc) spo_h5_abort(f);
        else rc = spo_h5_commit(f);
    }
    if (rc) fprintf(stderr, "spo-fakepool: %s\n", spo_errmsg());
    return rc;
}

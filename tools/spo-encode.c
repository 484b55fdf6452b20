/* spo-encode — prompts to embeds.h5 (embeds/1): the CLIP text encoder's
 * last hidden state for every prompt and for the empty prompt, the token
 * ids, the prompt ids and texts, and optionally the preference model's
 * token ids; for SDXL both encoders' states and the pooled embeddings. The
 * work is in lib/prompts*.c and lib/spo/encode*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spo/embeds.h"
#include "spo/encode.h"
#include "frame.h"
#include "io/h5io.h"
#include "io/modelid.h"
#include "text/prompts.h"

#include "spo-encode.opts.h"

static int on_shard(void *p, int idx, const char *arg)
{
    tool_vals *c = p;
    return spo_shard_parse(arg, &c->shard_i, &c->shard_n);
}

/* everything the run holds, so one place frees it (and removes a half-written output) */
typedef struct {
    spo_prompts p;
    spo_dev *dev;
    spo_encoder *enc;
    spo_tok *spm;
    spo_h5 *out;
    int32_t *ids, *spm_ids, *ids2;
    float *cond, *pooled, *unc_pooled; /* ids2, pooled, unc_pooled: SDXL */
} run_t;

static void release(run_t *r)
{
    spo_h5_abort(r->out);
    spo_prompts_free(&r->p);
    spo_encoder_free(r->enc);
    spo_tok_free(r->spm);
    if (r->dev) spo_dev_close(r->dev);
    free(r->ids);
    free(r->spm_ids);
    free(r->cond);
    free(r->ids2);
    free(r->pooled);
    free(r->unc_pooled);
    memset(r, 0, sizeof *r);
}

static _Noreturn void fail(run_t *r, int rc)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", spo_errmsg());
    release(r);
    spo_die(rc ? rc : 1, "%s", msg);
}

static int encode_all(run_t *r, int batch, int quiet)
{
    int P = r->p.n, L = spo_encoder_len(r->enc), D = spo_encoder_dim(r->enc), E = spo_encoder_pooled_dim(r->enc);
    spo_progress *pg = spo_progress_start("encode", (P + batch - 1) / batch, quiet);
    int rc = SPO_OK;
    for (int b = 0; b < P && !rc; b += batch) {
        int n = P - b < batch ? P - b : batch;
        rc = spo_encode_prompts_ex(r->enc, (const char *const *)r->p.text + b, n, r->ids + (size_t)b * L,
                                   E ? r->ids2 + (size_t)b * L : NULL, r->cond + (size_t)b * L * D,
                                   E ? r->pooled + (size_t)b * E : NULL);
        spo_progress_update(pg, (b + n + batch - 1) / batch);
    }
    spo_progress_end(pg);
    return rc;
}

static int write_all(run_t *r, const tool_vals *c, const float *uncond, const char *model_id, const char *tokdir,
                     int S)
{
    int64_t P = r->p.n, L = spo_encoder_len(r->enc), D = spo_encoder_dim(r->enc);
    int64_t s_cond[3] = {P, L, D}, s_unc[3] = {1, L, D}, s_ids[2] = {P, L}, s_p[1] = {P}, s_spm[2] = {P, S};
    int rc;
    if ((rc = spo_h5_write(r->out, "/cond", c->dtype, 3, s_cond, r->cond)) ||
        (rc = spo_h5_write(r->out, "/uncond", c->dtype, 3, s_unc, uncond)) ||
        (rc = spo_h5_write(r->out, "/token_ids", SPO_T_I32, 2, s_ids, r->ids)) ||
        (rc = spo_h5_write(r->out, "/prompt_id", SPO_T_I64, 1, s_p, r->p.id)) ||
        (rc = spo_h5_write_strings(r->out, "/prompt", P, (const char *const *)r->p.text)) ||
        (rc = spo_h5_attr_str(r->out, NULL, "model_id", model_id)) ||
        (rc = spo_h5_attr_str(r->out, NULL, "tokenizer", tokdir)) ||
        (rc = spo_h5_attr_str(r->out, NULL, "text_clean", spo_tok_mode_name(c->text_clean))))
        return rc;
    char shard[32];
    snprintf(shard, sizeof shard, "%d/%d", c->shard_i, c->shard_n);
    if (c->shard_n && (rc = spo_h5_attr_str(r->out, NULL, "shard", shard))) return rc;
    int64_t E = spo_encoder_pooled_dim(r->enc);
    char tokdir2[4200];
    snprintf(tokdir2, sizeof tokdir2, "%.4000s_2", tokdir);
    if (E && (rc = spo_embeds_write_xl(r->out, c->dtype, P, L, E, r->ids2, r->pooled, r->unc_pooled, tokdir2,
                                       spo_encoder_uncond_zeros(r->enc))))
        return rc;
    if (r->spm && ((rc = spo_h5_write(r->out, "/spm_ids", SPO_T_I32, 2, s_spm, r->spm_ids)) ||
                   (rc = spo_h5_attr_str(r->out, NULL, "spm_tokenizer", c->spm)) ||
                   (rc = spo_h5_attr_str(r->out, NULL, "spm_text_clean", spo_tok_mode_name(spo_tok_mode(r->spm))))))
        return rc;
    return SPO_OK;
}

int main(int argc, char **argv)
{
    double t0 = spo_now();
    spo_args a;
    tool_vals c;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, on_shard);

    run_t r = {0};
    int rc;
    char model_id[SPO_MODEL_ID_LEN], tokdir[4096];
    if ((rc = spo_prompts_read(&r.p, a.argv[0]))) fail(&r, rc);
    if (c.shard_n && (rc = spo_prompts_shard(&r.p, c.shard_i, c.shard_n))) fail(&r, rc);
    if (r.p.n == 0)
        fail(&r, spo_err(SPO_EINVAL, "%s: shard %d/%d holds no prompts", a.argv[0], c.shard_i, c.shard_n));
    if ((rc = spo_model_id(a.model, model_id, sizeof model_id))) fail(&r, rc);
    if ((rc = spo_h5_create(&r.out, a.out, "embeds", a.force))) fail(&r, rc);
    spo_vtime(&a, "start", spo_now() - t0);

    double t1 = spo_now();
    if ((rc = spo_dev_open(&r.dev, a.devkind, 0))) fail(&r, rc);
    if ((rc = spo_encoder_load(&r.enc, a.model, r.dev)) || (rc = spo_encoder_set_mode(r.enc, c.text_clean)))
        fail(&r, rc);
    if (c.spm && (rc = spo_tok_load_clip_dir(&r.spm, c.spm))) fail(&r, rc);
    spo_vtime(&a, "load", spo_now() - t1);

    double t2 = spo_now();
    int P = r.p.n, L = spo_encoder_len(r.enc), D = spo_encoder_dim(r.enc), E = spo_encoder_pooled_dim(r.enc);
    int S = r.spm ? spo_tok_max_length(r.spm) : 0;
    float *uncond = malloc((size_t)L * D * sizeof *uncond);
    r.ids = malloc((size_t)P * L * sizeof *r.ids);
    r.cond = malloc((size_t)P * L * D * sizeof *r.cond);
    if (c.spm) r.spm_ids = malloc((size_t)P * S * sizeof *r.spm_ids);
    if (E) {
        r.ids2 = malloc((size_t)P * L * sizeof *r.ids2);
        r.pooled = malloc((size_t)P * E * sizeof *r.pooled);
        r.unc_pooled = malloc((size_t)E * sizeof *r.unc_pooled);
    }
    if (!uncond || !r.ids || !r.cond || (c.spm && !r.spm_ids) || (E && (!r.ids2 || !r.pooled || !r.unc_pooled))) {
        free(uncond);
        fail(&r, spo_err(SPO_EIO, "out of memory for %d prompts", P));
    }
    if ((rc = encode_all(&r, c.batch, a.quiet)) || (rc = spo_encode_uncond(r.enc, uncond, r.unc_pooled)) ||
        (c.spm && (rc = spo_tokenize(r.spm, (const char *const *)r.p.text, P, S, r.spm_ids)))) {
        free(uncond);
        fail(&r, rc);
    }
    spo_vtime(&a, "work", spo_now() - t2);

    snprintf(tokdir, sizeof tokdir, "%s/tokenizer", a.model);
    rc = write_all(&r, &c, uncond, model_id, tokdir, S);
    free(uncond);
    if (rc) fail(&r, rc);
    rc = spo_h5_commit(r.out); /* closes the file, committed or not */
    r.out = NULL;
    if (rc) fail(&r, rc);
    release(&r);
    return spo_finish();
}

/* update.c — gradient of the SPO loss over pairs and one optimizer step
 * (see update.h). Per call of the UNet, P pairs (u->micro) run as 2P
 * images [x.. | x..] with context [uncond.. | cond..]: first the reference
 * pass (LoRA off), then the policy pass (LoRA on) and its backward with
 * d loss / d eps split into (1 - g) for the uncond half and g for the cond
 * half. Both passes run in train mode, so they take the same code path and
 * a LoRA with B = 0 gives ratios of exactly 1.
 * Trajectory pairs (the loser with its own parent) run 4P images
 * [x.. xl.. | x.. xl..]: per half the winners' parents, then the losers'.
 * SDXL pairs add the UNet's added conditioning per image: the pooled text
 * embedding ([uncond pooled.. | pooled..]) and u->time_ids. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "spo/update.h"

typedef struct {
    float *parent, *win, *lose, *cond, *ht, *ref, *pol, *eps, *epsr, *geps, *hdout, *g;
    float *plose, *epsl, *epsrl; /* trajectory pairs only */
    float *pooled;               /* SDXL only: (P, E) */
    int *t;
    float *dx, *dctx, *dt, *dout, *ddx; /* device */
    float *dte, *dti;                   /* device, SDXL only: text_embeds (m2, E), time_ids (m2, 6) */
} bufs;

static void free_bufs(spo_dev *d, bufs *b)
{
    free(b->parent), free(b->win), free(b->lose), free(b->cond), free(b->ht), free(b->ref), free(b->pol);
    free(b->eps), free(b->epsr), free(b->geps), free(b->hdout), free(b->g), free(b->t);
    free(b->plose), free(b->epsl), free(b->epsrl), free(b->pooled);
    float *dv[] = {b->dx, b->dctx, b->dt, b->dout, b->ddx, b->dte, b->dti};
    for (int i = 0; i < 7; i++)
        if (dv[i]) spo_dev_free(d, dv[i]);
}

/* S parents per pair: 1, or 2 for trajectory pairs; E: SDXL's pooled width,
 * or 0; time_ids (SDXL) go to every image slot once, the same for all */
static int alloc_bufs(spo_dev *d, bufs *b, int P, int S, size_t lat, size_t ctx, size_t numel, size_t E,
                      const float *time_ids)
{
    memset(b, 0, sizeof *b);
    size_t m = 2 * (size_t)S * P;
    b->parent = malloc(P * lat * sizeof(float)), b->win = malloc(P * lat * sizeof(float));
    b->lose = malloc(P * lat * sizeof(float)), b->cond = malloc(P * ctx * sizeof(float));
    b->ht = malloc(m * sizeof(float)), b->ref = malloc(m * lat * sizeof(float)), b->pol = malloc(m * lat * sizeof(float));
    b->eps = malloc(lat * sizeof(float)), b->epsr = malloc(lat * sizeof(float));
    b->geps = malloc(S * P * lat * sizeof(float)), b->hdout = malloc(m * lat * sizeof(float));
    if (S == 2) {
        b->plose = malloc(P * lat * sizeof(float)), b->epsl = malloc(lat * sizeof(float));
        b->epsrl = malloc(lat * sizeof(float));
        if (!b->plose || !b->epsl || !b->epsrl) return spo_err(SPO_EIO, "out of memory");
    }
    b->g = malloc(numel * sizeof(float)), b->t = malloc(P * sizeof(int));
    if (!b->parent || !b->win || !b->lose || !b->cond || !b->ht || !b->ref || !b->pol || !b->eps || !b->epsr ||
        !b->geps || !b->hdout || !b->g || !b->t)
        return spo_err(SPO_EIO, "out of memory");
    b->dx = spo_dev_alloc(d, m * lat), b->dctx = spo_dev_alloc(d, m * ctx), b->dt = spo_dev_alloc(d, m);
    b->dout = spo_dev_alloc(d, m * lat), b->ddx = spo_dev_alloc(d, m * lat);
    if (!b->dx || !b->dctx || !b->dt || !b->dout || !b->ddx) return SPO_EIO;
    if (!E) return SPO_OK;
    b->pooled = malloc(P * E * sizeof(float));
    b->dte = spo_dev_alloc(d, m * E), b->dti = spo_dev_alloc(d, m * SPO_UNET_TIME_IDS);
    if (!b->pooled || !b->dte || !b->dti) return spo_err(SPO_EIO, "out of memory");
    for (size_t q = 0; q < m; q++)
        SPO_TRY(spo_dev_upload(d, b->dti + q * SPO_UNET_TIME_IDS, time_ids, SPO_UNET_TIME_IDS));
    return SPO_OK;
}

/* guided eps of pair j of mm from a (2mm, lat) UNet output */
static void guide(float *e, const float *out, int j, int mm, size_t lat, float g)
{
    const float *eu = out + (size_t)j * lat, *ec = out + (size_t)(mm + j) * lat;
    for (size_t i = 0; i < lat; i++) e[i] = eu[i] + g * (ec[i] - eu[i]);
}

/* SDXL: the pooled embeddings of the m images per half of mm pairs
 * ([uncond pooled.. | pooled..]; the time ids are in place since alloc_bufs) */
static int load_added(spo_update *u, spo_pairs_in *p, bufs *b, const int64_t *idx, int mm, int m, size_t E)
{
    spo_dev *d = spo_unet_params(u->unet)->dev;
    const float *unp = spo_pairs_in_uncond_pooled(p);
    for (int j = 0; j < mm; j++) SPO_TRY(spo_pairs_in_pooled(p, idx[j], b->pooled + j * E));
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < m; j++) {
            size_t q = (size_t)k * m + j;
            SPO_TRY(spo_dev_upload(d, b->dte + q * E, k ? b->pooled + (j % mm) * E : unp, E));
        }
    return SPO_OK;
}

/* the pairs of one UNet call: inputs on the device; S parents per pair,
 * so m = S mm images per half, the losers' parents after the winners' */
static int load_inputs(spo_update *u, spo_pairs_in *p, bufs *b, const int64_t *idx, int mm, int S, size_t lat,
                       size_t ctx)
{
    spo_dev *d = spo_unet_params(u->unet)->dev;
    const float *unc = spo_pairs_in_uncond(p);
    size_t E = (size_t)spo_pairs_in_meta(p)->E;
    int rc = SPO_OK, m = S * mm;
    for (int j = 0; j < mm && !rc; j++) {
        rc = spo_pairs_in_row(p, idx[j], b->parent + j * lat, b->win + j * lat, b->lose + j * lat, b->cond + j * ctx,
                              &b->t[j]);
        if (!rc && S == 2) rc = spo_pairs_in_parent_lose(p, idx[j], b->plose + j * lat);
    }
    if (!rc && E) rc = load_added(u, p, b, idx, mm, m, E);
    for (int k = 0; k < 2 && !rc; k++) {
        rc = spo_dev_upload(d, b->dx + (size_t)k * m * lat, b->parent, (size_t)mm * lat);
        if (!rc && S == 2) rc = spo_dev_upload(d, b->dx + ((size_t)k * m + mm) * lat, b->plose, (size_t)mm * lat);
        for (int j = 0; j < m && !rc; j++) {
            rc = spo_dev_upload(d, b->dctx + ((size_t)k * m + j) * ctx, k ? b->cond + (j % mm) * ctx : unc, ctx);
            b->ht[k * m + j] = (float)b->t[j % mm];
        }
    }
    return rc ? rc : spo_dev_upload(d, b->dt, b->ht, 2 * (size_t)m);
}

int spo_update_grad(spo_update *u, spo_pairs_in *p, const int64_t *idx, int n, double weight, double *gsum,
                    spo_update_stats *st)
{
    const spo_pairs_meta *mt = spo_pairs_in_meta(p);
    const spo_unet_config *cf = spo_unet_cfg(u->unet);
    spo_dev *d = spo_unet_params(u->unet)->dev;
    if (mt->C != cf->in_channels || cf->out_channels != mt->C)
        return spo_err(SPO_EINVAL, "pairs have %d latent channels, the UNet takes %d", mt->C, cf->in_channels);
    if (mt->D != cf->cross_dim)
        return spo_err(SPO_EINVAL, "pairs have text width %d, the UNet's cross_attention_dim is %d", mt->D, cf->cross_dim);
    if ((cf->add_time_dim > 0) != (mt->E > 0) || (mt->E && mt->E != cf->add_text_dim))
        return spo_err(SPO_EINVAL, "pairs have pooled text width %d, the UNet's added conditioning takes %d", mt->E,
                       cf->add_time_dim > 0 ? cf->add_text_dim : 0);
    int P = u->micro > 0 ? u->micro : 1, h = mt->h, w = mt->w, L = mt->L, f = spo_unet_multiple(u->unet);
    if (h % f || w % f)
        return spo_err(SPO_EINVAL, "pairs have %dx%d latents, the UNet takes multiples of %d", h, w, f);
    size_t lat = (size_t)mt->C * h * w, ctx = (size_t)L * mt->D, numel = spo_lora_train_numel(u->lt);
    float g = u->guidance;
    int S = mt->own_lose_parent ? 2 : 1;
    bufs b;
    int rc = alloc_bufs(d, &b, P < n ? P : n, S, lat, ctx, numel, (size_t)mt->E, u->time_ids);
    for (int i0 = 0; i0 < n && !rc; i0 += P) {
        int mm = n - i0 < P ? n - i0 : P, m = S * mm;
        if ((rc = load_inputs(u, p, &b, idx + i0, mm, S, lat, ctx))) break;
        for (int j = 0; j < mm && !rc; j++)
            if (b.t[j] < 1 || b.t[j] >= u->sched.num_train)
                rc = spo_err(SPO_EINVAL, "pair %lld: timestep %d outside 1..%d", (long long)idx[i0 + j], b.t[j],
                             u->sched.num_train - 1);
        if (rc) break;
        spo_unet_lora_enable(u->unet, 0);
        rc = spo_unet_forward_added(u->unet, b.dout, b.dx, b.dt, b.dctx, b.dte, b.dti, 2 * m, h, w, L, 1);
        if (!rc) rc = spo_dev_download(d, b.ref, b.dout, 2 * (size_t)m * lat);
        spo_unet_lora_enable(u->unet, 1);
        if (!rc) rc = spo_unet_forward_added(u->unet, b.dout, b.dx, b.dt, b.dctx, b.dte, b.dti, 2 * m, h, w, L, 1);
        if (!rc) rc = spo_dev_download(d, b.pol, b.dout, 2 * (size_t)m * lat);
        if (rc) break;
        for (int j = 0; j < mm; j++) {
            spo_pair_loss pl;
            guide(b.eps, b.pol, j, m, lat, g);
            guide(b.epsr, b.ref, j, m, lat, g);
            float *ge = b.geps + (size_t)j * lat;
            if (S == 1) {
                spo_pair_loss_eval(&u->sched, b.t[j], u->eta, &u->loss, b.parent + j * lat, b.win + j * lat,
                                   b.lose + j * lat, b.eps, b.epsr, lat, weight, &pl, ge);
            } else { /* the loser's images are mm slots on */
                guide(b.epsl, b.pol, mm + j, m, lat, g);
                guide(b.epsrl, b.ref, mm + j, m, lat, g);
                spo_pair_loss_eval2(&u->sched, b.t[j], u->eta, &u->loss, b.parent + j * lat, b.plose + j * lat,
                                    b.win + j * lat, b.lose + j * lat, b.eps, b.epsl, b.epsr, b.epsrl, lat, weight,
                                    &pl, ge, b.geps + (size_t)(mm + j) * lat);
            }
            st->loss += pl.loss, st->rw += pl.rw, st->rl += pl.rl;
            st->clamped += pl.clamped_w || pl.clamped_l;
            st->pairs++;
        }
        for (int q = 0; q < m; q++) { /* image slot q: (1 - g) d/d eps to the uncond half, g to the cond half */
            const float *ge = b.geps + (size_t)q * lat;
            float *du = b.hdout + (size_t)q * lat, *dc = b.hdout + (size_t)(m + q) * lat;
            for (size_t i = 0; i < lat; i++) du[i] = (1.0f - g) * ge[i], dc[i] = g * ge[i];
        }
        rc = spo_dev_upload(d, b.dout, b.hdout, 2 * (size_t)m * lat);
        if (!rc) rc = spo_dev_zero(d, b.ddx, 2 * (size_t)m * lat);
        if (!rc) rc = spo_lora_train_zero_grad(u->lt);
        if (!rc) rc = spo_unet_backward(u->unet, b.ddx, NULL, b.dout);
        if (!rc) rc = spo_lora_train_grad(u->lt, b.g);
        for (size_t i = 0; i < numel && !rc; i++) gsum[i] += b.g[i];
    }
    free_bufs(d, &b);
    return rc;
}

int spo_update_step(spo_update *u, spo_pairs_in *p, const int64_t *batch, int nb, const spo_update_comm *comm,
                    const spo_adamw_cfg *opt, int64_t step, float *theta, float *m, float *v, spo_step_result *res)
{
    size_t numel = spo_lora_train_numel(u->lt);
    int R = comm && comm->nranks > 1 ? comm->nranks : 1, r = R > 1 ? comm->rank : 0;
    int lo = (int)((int64_t)nb * r / R), hi = (int)((int64_t)nb * (r + 1) / R);
    double *gs = calloc(numel + 5, sizeof *gs);
    float *g = malloc((numel ? numel : 1) * sizeof *g);
    spo_update_stats st = {0};
    int rc = (!gs || !g) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    if (!rc && hi > lo) rc = spo_update_grad(u, p, batch + lo, hi - lo, 1.0 / nb, gs, &st);
    if (!rc) {
        double *tail = gs + numel;
        tail[0] = st.loss, tail[1] = st.rw, tail[2] = st.rl, tail[3] = (double)st.clamped, tail[4] = (double)st.pairs;
        if (R > 1) rc = comm->reduce(comm->ctx, gs, numel + 5);
        st.loss = tail[0], st.rw = tail[1], st.rl = tail[2], st.clamped = (int64_t)tail[3], st.pairs = (int64_t)tail[4];
    }
    int finite = !rc && isfinite(st.loss);
    for (size_t i = 0; i < numel && finite; i++) finite = isfinite(gs[i]);
    if (!rc && !finite) rc = spo_err(SPO_EIO, "NaN or Inf in the loss or the gradient");
    if (!rc) {
        for (size_t i = 0; i < numel; i++) g[i] = (float)gs[i];
        res->pairs = st.pairs;
        res->loss = st.loss / (double)nb, res->rw = st.rw / (double)nb, res->rl = st.rl / (double)nb;
        res->clamped = (double)st.clamped / (double)nb;
        res->grad_norm = spo_clip_grad_norm(g, numel, opt->max_grad_norm);
        spo_adamw_step(opt, step, theta, g, m, v, numel);
        rc = spo_lora_train_set(u->lt, theta);
    }
    free(gs), free(g);
    return rc;
}

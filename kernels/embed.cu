// embed.cu — the embeddings on CUDA (mirrors lib/ops/cpu/cpu_embed.c): the
// token gather (embed_fwd; the ids come from the host and are copied to
// scratch first) and the sinusoidal timestep embedding, as diffusers
// get_timestep_embedding in float32:
//   half = dim / 2, e_i = (-ln(max_period) * i) / (half - shift),
//   a_i = t * exp(e_i), y = [sin a, cos a] or [cos a, sin a] with
//   flip_sin_to_cos; an odd dim gets a zero last column.
#include <math.h>

#include "cuda_common.cuh"

// one thread per (i, j < half), plus the zero column of an odd dim
static __global__ void k_timestep(float *y, const float *t, int n, int dim, int flip, float nl, float div)
{
    const int half = dim / 2;
    SPO_CU_FOR(e, (size_t)n * (half + 1))
    {
        const int i = (int)(e / (size_t)(half + 1)), j = (int)(e % (size_t)(half + 1));
        float *yr = y + (size_t)i * dim;
        if (j == half) {
            if (dim % 2) yr[dim - 1] = 0.0f;
            continue;
        }
        const float ex = nl * (float)j / div;
        const float a = t[i] * expf(ex);
        yr[(flip ? half : 0) + j] = sinf(a);
        yr[(flip ? 0 : half) + j] = cosf(a);
    }
}

extern "C" int spo_cuda_timestep_embed(spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos,
                                       float shift, float max_period)
{
    (void)d;
    const int half = dim / 2;
    const float nl = (float)-log((double)max_period), div = (float)half - shift;
    k_timestep<<<spo_cu_blocks((size_t)n * (half + 1)), SPO_CU_THREADS>>>(y, t, n, dim, flip_sin_to_cos, nl, div);
    SPO_CU_LAUNCHED("spo_timestep_embed");
    return SPO_OK;
}

// y[i] = table[ids[i]] (ids checked against the vocabulary on the host)
static __global__ void k_gather(float *y, const float *table, const int32_t *ids, int n, int dim)
{
    SPO_CU_FOR(e, (size_t)n * dim)
    {
        const size_t i = e / (size_t)dim, k = e % (size_t)dim;
        y[e] = table[(size_t)ids[i] * dim + k];
    }
}

extern "C" int spo_cuda_embed_fwd(spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim,
                                  int vocab)
{
    (void)vocab;
    static const char fn[] = "spo_embed_fwd";
    int32_t *dids = (int32_t *)spo_cu_scratch(d, (size_t)n * sizeof(int32_t), fn);
    if (!dids) return SPO_EIO;
    SPO_CU_TRY(fn, cudaMemcpy(dids, ids, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice));
    k_gather<<<spo_cu_blocks((size_t)n * dim), SPO_CU_THREADS>>>(y, table, dids, n, dim);
    SPO_CU_LAUNCHED(fn);
    return SPO_OK;
}

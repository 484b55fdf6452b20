/* test_loopfiles.c — the loop's files (lib/spo state, pool, pairs,
 * loopfile): hostile sizes are refused before anything is allocated (a
 * small file declaring 3x4x100000x100000 latents, K = 2^31 children, 2^31
 * prompts or pairs), the shared checks (model ids, duplicate prompt ids,
 * overflow, timesteps), and the pairs row reader on pairs/2 and pairs/1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "io/h5io.h"
#include "io/h5rows.h"
#include "spo/embeds.h"
#include "spo/loopfile.h"
#include "spo/pairs.h"
#include "spo/pool.h"
#include "spo/state.h"

static char path[64];

static spo_h5 *new_file(void)
{
    snprintf(path, sizeof path, "/tmp/spo_test_loopfiles_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, path, NULL, 1), SPO_OK);
    return f;
}

/* A dataset of any size, declared only: chunked, no chunk written. */
static void declare(spo_h5 *f, const char *name, hid_t type, int nd, const hsize_t *dims)
{
    hsize_t ch[8];
    for (int i = 0; i < nd; i++) ch[i] = 1;
    ch[nd - 1] = dims[nd - 1] < 1024 ? dims[nd - 1] : 1024;
    hid_t sp = H5Screate_simple(nd, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, nd, ch);
    hid_t ds = H5Dcreate2(spo_h5_id(f), name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    assert_true(ds >= 0);
    H5Dclose(ds), H5Pclose(pl), H5Sclose(sp);
}

static void attrs(spo_h5 *f, const char *schema)
{
    assert_int_equal(spo_h5_attr_str(f, NULL, "spo_schema", schema), SPO_OK);
    assert_int_equal(spo_h5_attr_str(f, NULL, "model_id", "m0"), SPO_OK);
    assert_int_equal(spo_h5_attr_str(f, NULL, "lora_id", "none"), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "seed", 1), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "step", 0), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "num_steps", 20), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "timestep", 951), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "child_timestep", 901), SPO_OK);
    assert_int_equal(spo_h5_attr_float(f, NULL, "guidance", 5), SPO_OK);
    assert_int_equal(spo_h5_attr_float(f, NULL, "eta", 1), SPO_OK);
}

static void expect_msg(const char *a, const char *b)
{
    const char *m = spo_errmsg();
    if (!strstr(m, a) || (b && !strstr(m, b))) fail_msg("message '%s' lacks '%s' or '%s'", m, a, b ? b : "");
}

static void test_state_huge_latents(void **st)
{
    spo_h5 *f = new_file();
    hsize_t d4[4] = {3, 4, 100000, 100000};
    int64_t ids[3] = {0, 1, 2}, three = 3;
    declare(f, "/latents", H5T_IEEE_F32LE, 4, d4);
    assert_int_equal(spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, &three, ids), SPO_OK);
    attrs(f, "state/1");
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(spo_h5_open(&f, path, "state", NULL), SPO_OK);
    spo_statemeta m;
    assert_int_equal(spo_state_meta(f, &m), SPO_EINVAL);
    expect_msg(path, "/latents h 100000 out of range");
    spo_h5_close(f);
    unlink(path);

    /* plausible sizes, but nothing stored: refused as sparse */
    f = new_file();
    hsize_t s4[4] = {3, 4, 64, 64};
    declare(f, "/latents", H5T_IEEE_F32LE, 4, s4);
    assert_int_equal(spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, &three, ids), SPO_OK);
    attrs(f, "state/1");
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(spo_h5_open(&f, path, "state", NULL), SPO_OK);
    assert_int_equal(spo_state_meta(f, &m), SPO_EINVAL);
    expect_msg(path, "/latents declares 196608 bytes but stores 0");
    spo_h5_close(f);
    unlink(path);
}

static void test_pool_huge_K(void **st)
{
    spo_h5 *f = new_file();
    hsize_t d1[1] = {1}, d4[4] = {1, 4, 8, 8}, d5[5] = {1, (hsize_t)1 << 31, 4, 8, 8};
    declare(f, "/prompt_id", H5T_STD_I64LE, 1, d1);
    declare(f, "/parent", H5T_IEEE_F32LE, 4, d4);
    declare(f, "/parent_eps", H5T_IEEE_F32LE, 4, d4);
    declare(f, "/children", H5T_IEEE_F32LE, 5, d5);
    declare(f, "/x0_hat", H5T_IEEE_F32LE, 5, d5);
    attrs(f, "pool/1");
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(spo_h5_open(&f, path, "pool", NULL), SPO_OK);
    spo_poolmeta m;
    assert_int_equal(spo_pool_meta(f, &m), SPO_EINVAL);
    expect_msg(path, "/children K 2147483648 out of range 1..64");
    spo_h5_close(f);
    unlink(path);
}

static void test_embeds_many_prompts(void **st)
{
    spo_h5 *f = new_file();
    hsize_t d1[1] = {(hsize_t)1 << 31};
    declare(f, "/prompt_id", H5T_STD_I64LE, 1, d1);
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(spo_h5_open(&f, path, NULL, NULL), SPO_OK);
    int64_t id = 0, row;
    assert_int_equal(spo_embeds_rows(f, &id, 1, "x.h5", &row), SPO_EINVAL);
    expect_msg(path, "/prompt_id declares 17179869184 bytes but stores 0");
    spo_h5_close(f);
    unlink(path);
}

static void test_checks(void **st)
{
    int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 40}, ok[2] = {3, 5}, neg[1] = {-1};
    size_t bytes = 0;
    assert_int_equal(spo_size_check("f.h5", "/x", big, 2, 0, 4, &bytes), SPO_EINVAL);
    expect_msg("f.h5: /x declares more data than this machine's memory", NULL);
    assert_int_equal(spo_size_check("f.h5", "/x", ok, 2, 1, 4, &bytes), SPO_OK);
    assert_int_equal((int)bytes, 60);
    assert_int_equal(spo_size_check("f.h5", "/x", neg, 1, 0, 4, NULL), SPO_EINVAL);
    assert_int_equal(spo_timestep_check("p.h5", "timestep", (int64_t)1 << 40), SPO_EINVAL);
    expect_msg("p.h5: timestep 1099511627776 out of range 0..4095", NULL);
    assert_int_equal(spo_timestep_check("p.h5", "timestep", -1), SPO_EINVAL);
    assert_int_equal(spo_timestep_check("p.h5", "timestep", 951), SPO_OK);
    assert_int_equal(spo_same_model("a.h5", "m0", "b.h5", "m0"), SPO_OK);
    assert_int_equal(spo_same_model("a.h5", "m0", "b.h5", "m1"), SPO_EINVAL);
    expect_msg("a.h5 is for model 'm0', b.h5 for model 'm1'", NULL);
    int64_t ids[4] = {7, 3, 9, 3};
    assert_int_equal(spo_ids_distinct(ids, 3, "s.h5"), SPO_OK);
    assert_int_equal(spo_ids_distinct(ids, 4, "s.h5"), SPO_EINVAL);
    expect_msg("s.h5: prompt id 3 appears more than once", NULL);
}

/* A pairs/2 file of 4 pairs (prompts 7, 2, 7, 5; table 2, 5, 7), or with
 * bad = 1 a pair whose prompt id is not in the table, bad = 2 a timestep
 * of -3. C,h,w = 1,1,2; L,D = 1,3. */
static void write_pairs2(int bad)
{
    spo_h5 *f;
    snprintf(path, sizeof path, "/tmp/spo_test_loopfiles_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(spo_h5_create(&f, path, "pairs", 1), SPO_OK);
    int64_t key[16] = {1, 7, 0, 0, 1, 2, 1, 0, 1, 7, 2, 0, 1, bad == 1 ? 6 : 5, 3, 0}, N = 4, P = 3;
    int64_t pid[3] = {2, 5, 7}, lat[4] = {4, 1, 1, 2}, txt[3] = {3, 1, 3}, u[3] = {1, 1, 3};
    int32_t t[4] = {951, 901, bad == 2 ? -3 : 851, 801};
    float x[8], sw[4] = {1, 2, 3, 4}, cond[9] = {2, 2, 2, 5, 5, 5, 7, 7, 7}, unc[3] = {0, 0, 0};
    for (int i = 0; i < 8; i++) x[i] = (float)i;
    assert_int_equal(spo_h5_write(f, "/key", SPO_T_I64, 2, (int64_t[]){4, 4}, key), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/parent", SPO_T_F32, 4, lat, x), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/win", SPO_T_F32, 4, lat, x), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/lose", SPO_T_F32, 4, lat, x), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/timestep", SPO_T_I32, 1, &N, t), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/score_win", SPO_T_F32, 1, &N, sw), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/score_lose", SPO_T_F32, 1, &N, sw), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/prompt_id", SPO_T_I64, 1, &P, pid), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/cond", SPO_T_F32, 3, txt, cond), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/uncond", SPO_T_F32, 3, u, unc), SPO_OK);
    assert_int_equal(spo_h5_attr_str(f, NULL, "model_id", "m0"), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "num_steps", 20), SPO_OK);
    assert_int_equal(spo_h5_attr_float(f, NULL, "guidance", 5), SPO_OK);
    assert_int_equal(spo_h5_attr_float(f, NULL, "eta", 1), SPO_OK);
    assert_int_equal(spo_h5_commit(f), SPO_OK);
}

static void test_pairs_reader(void **st)
{
    write_pairs2(0);
    spo_pairs *p;
    assert_int_equal(spo_pairs_open(&p, path, NULL), SPO_OK);
    const spo_pairsinfo *in = spo_pairs_info(p);
    assert_int_equal(in->version, 2), assert_int_equal((int)in->n, 4), assert_int_equal((int)in->P, 3);
    assert_int_equal((int)in->L, 1), assert_int_equal((int)in->D, 3), assert_int_equal((int)in->w, 2);
    float win[6], cond[9];
    int64_t pid[3];
    int32_t t[3];
    spo_pairbatch b = {.win = win, .cond = cond, .prompt_id = pid, .timestep = t};
    assert_int_equal(spo_pairs_read(p, 1, 3, &b), SPO_OK); /* pairs 1..3: prompts 2, 7, 5 */
    assert_int_equal((int)pid[0], 2), assert_int_equal((int)pid[1], 7), assert_int_equal((int)pid[2], 5);
    assert_int_equal(t[0], 901), assert_int_equal(t[2], 801);
    assert_true(win[0] == 2.0f && win[5] == 7.0f);
    assert_true(cond[0] == 2.0f && cond[3] == 7.0f && cond[8] == 5.0f); /* looked up by prompt id */
    assert_int_equal(spo_pairs_read(p, 2, 3, &b), SPO_EINVAL);       /* past the end */
    spo_pairs_close(p);
    unlink(path);

    write_pairs2(1);
    assert_int_equal(spo_pairs_open(&p, path, NULL), SPO_OK);
    b = (spo_pairbatch){.cond = cond};
    assert_int_equal(spo_pairs_read(p, 0, 4, &b), SPO_EINVAL);
    expect_msg(path, "pair 3 has prompt id 6, which is not in /prompt_id");
    spo_pairs_close(p);
    unlink(path);

    write_pairs2(2);
    assert_int_equal(spo_pairs_open(&p, path, NULL), SPO_OK);
    b = (spo_pairbatch){.win = win};
    assert_int_equal(spo_pairs_read(p, 0, 1, &b), SPO_OK);
    assert_int_equal(spo_pairs_read(p, 0, 4, &b), SPO_EINVAL);
    expect_msg(path, "pair 2 has timestep -3, out of range 0..4095");
    spo_pairs_close(p);
    unlink(path);
}

static void test_pairs_huge(void **st)
{
    spo_h5 *f = new_file();
    hsize_t N = (hsize_t)1 << 31, dk[2] = {N, 4}, dl[4] = {N, 4, 8, 8}, dn[1] = {N}, dp[1] = {1}, dc[3] = {1, 7, 8};
    declare(f, "/key", H5T_STD_I64LE, 2, dk);
    declare(f, "/parent", H5T_IEEE_F32LE, 4, dl);
    declare(f, "/win", H5T_IEEE_F32LE, 4, dl);
    declare(f, "/lose", H5T_IEEE_F32LE, 4, dl);
    declare(f, "/timestep", H5T_STD_I32LE, 1, dn);
    declare(f, "/score_win", H5T_IEEE_F32LE, 1, dn);
    declare(f, "/score_lose", H5T_IEEE_F32LE, 1, dn);
    declare(f, "/prompt_id", H5T_STD_I64LE, 1, dp);
    declare(f, "/cond", H5T_IEEE_F32LE, 3, dc);
    declare(f, "/uncond", H5T_IEEE_F32LE, 3, dc);
    attrs(f, "pairs/2");
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    spo_pairs *p;
    assert_int_equal(spo_pairs_open(&p, path, NULL), SPO_EINVAL);
    expect_msg(path, "/key declares "); /* more than memory, or more than stored: either refuses */
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_huge_latents), cmocka_unit_test(test_pool_huge_K),
        cmocka_unit_test(test_embeds_many_prompts), cmocka_unit_test(test_checks),
        cmocka_unit_test(test_pairs_reader),        cmocka_unit_test(test_pairs_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

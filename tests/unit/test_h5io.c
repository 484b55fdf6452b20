/* test_h5io.c — HDF5 I/O: round trips of every dtype, attributes, strings,
 * atomic writes (nothing left on failure or SIGINT), schema checks on write. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "core/err.h"
#include "io/h5io.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/spo-test-h5io-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_roundtrip(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/rt.h5", dir);
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, path, NULL, 0), SPO_OK);
    float a[6] = {1, -2.5f, 3.25f, 65504, 1e-3f, 0};
    int32_t b[3] = {-1, 0, 2147483647};
    int64_t c[2] = {-5, 1LL << 40};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2};
    assert_int_equal(spo_h5_write(f, "/g/a32", SPO_T_F32, 2, s23, a), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/g/a16", SPO_T_F16, 2, s23, a), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/b", SPO_T_I32, 1, s3, b), SPO_OK);
    assert_int_equal(spo_h5_write(f, "/c", SPO_T_I64, 1, s2, c), SPO_OK);
    const char *strs[] = {"a photo", "ünïcødé ✓"};
    assert_int_equal(spo_h5_write_strings(f, "/s", 2, strs), SPO_OK);
    assert_int_equal(spo_h5_attr_str(f, NULL, "name", "x"), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, "/g/a32", "n", 42), SPO_OK);
    assert_int_equal(spo_h5_attr_float(f, "/", "g", 7.5), SPO_OK);
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(count_entries(), 1);

    assert_int_equal(spo_h5_open(&f, path, NULL, NULL), SPO_OK);
    float r[6];
    assert_int_equal(spo_h5_read_f32(f, "/g/a32", r, 6), SPO_OK);
    assert_memory_equal(r, a, sizeof a);
    assert_int_equal(spo_h5_read_f32(f, "/g/a16", r, 6), SPO_OK);
    for (int i = 0; i < 6; i++) assert_true(fabsf(r[i] - a[i]) <= 1e-3f * fabsf(a[i]) + 1e-6f);
    spo_dsinfo info;
    assert_int_equal(spo_h5_info(f, "/g/a16", &info), SPO_OK);
    assert_int_equal(info.type, SPO_T_F16);
    assert_int_equal(info.ndim, 2);
    int32_t rb[3];
    assert_int_equal(spo_h5_read_i32(f, "/b", rb, 3), SPO_OK);
    assert_memory_equal(rb, b, sizeof b);
    int64_t rc64[2];
    assert_int_equal(spo_h5_read_i64(f, "/c", rc64, 2), SPO_OK);
    assert_memory_equal(rc64, c, sizeof c);
    char **rs;
    int64_t ns;
    assert_int_equal(spo_h5_read_strings(f, "/s", &rs, &ns), SPO_OK);
    assert_int_equal(ns, 2);
    assert_string_equal(rs[1], strs[1]);
    spo_strings_free(rs, ns);
    char buf[64];
    int64_t iv;
    double dv;
    assert_int_equal(spo_h5_get_attr_str(f, NULL, "name", buf, sizeof buf), SPO_OK);
    assert_string_equal(buf, "x");
    assert_int_equal(spo_h5_get_attr_int(f, "/g/a32", "n", &iv), SPO_OK);
    assert_int_equal(iv, 42);
    assert_int_equal(spo_h5_get_attr_float(f, NULL, "g", &dv), SPO_OK);
    assert_true(dv == 7.5);
    assert_int_equal(spo_h5_get_attr_str(f, NULL, "history", buf, sizeof buf), SPO_OK);
    /* errors name the file and the object */
    assert_int_equal(spo_h5_read_f32(f, "/nope", r, 6), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "missing dataset /nope"));
    assert_int_equal(spo_h5_read_f32(f, "/g/a32", r, 5), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "has 6 elements, expected 5"));
    assert_int_equal(spo_h5_read_f32(f, "/s", r, 2), SPO_EINVAL);
    assert_int_equal(spo_h5_get_attr_int(f, NULL, "name", &iv), SPO_EINVAL);
    assert_int_equal(spo_h5_get_attr_int(f, NULL, "none", &iv), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "missing attribute 'none'"));
    spo_h5_close(f);
}

static void test_abort_leaves_nothing(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ab.h5", dir);
    int before = count_entries();
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, path, NULL, 0), SPO_OK);
    assert_int_equal(count_entries(), before + 1); /* the temporary */
    spo_h5_abort(f);
    assert_int_equal(count_entries(), before);
}

static void test_invalid_write_refused(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/inv.h5", dir);
    int before = count_entries();
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, path, "scores", 0), SPO_OK);
    float s[8] = {0};
    int64_t shape[2] = {2, 4};
    assert_int_equal(spo_h5_write(f, "/scores", SPO_T_F32, 2, shape, s), SPO_OK);
    /* /prompt_id and the attributes are missing */
    assert_int_equal(spo_h5_commit(f), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "refusing to write invalid file"));
    assert_int_equal(count_entries(), before);
}

static void test_exists_and_force(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ex.h5", dir);
    FILE *fp = fopen(path, "w");
    fputs("x", fp);
    fclose(fp);
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, path, NULL, 0), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "exists"));
    assert_int_equal(spo_h5_create(&f, path, NULL, 1), SPO_OK);
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(spo_h5_open(&f, path, NULL, NULL), SPO_OK);
    spo_h5_close(f);
}

static void test_sigint_removes_temp(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/sig.h5", dir);
    int before = count_entries();
    pid_t pid = fork();
    if (pid == 0) {
        spo_h5 *f;
        if (spo_h5_create(&f, path, NULL, 0)) _exit(3);
        raise(SIGINT);
        _exit(4); /* not reached */
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGINT);
    assert_int_equal(count_entries(), before);
}

static void test_missing_folder(void **state)
{
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, "/nonexistent-spo-dir/x.h5", NULL, 0), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "does not exist"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),          cmocka_unit_test(test_abort_leaves_nothing),
        cmocka_unit_test(test_invalid_write_refused), cmocka_unit_test(test_exists_and_force),
        cmocka_unit_test(test_sigint_removes_temp), cmocka_unit_test(test_missing_folder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

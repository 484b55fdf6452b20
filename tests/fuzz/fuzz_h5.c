/* fuzz_h5.c — libFuzzer target for the HDF5 reader on file images, the path
 * of `spo-x -` (lib/io/h5io.c reads stdin into a core-driver file image).
 * The input is a small program that builds an HDF5 file in memory with the
 * HDF5 library (so the fuzzer explores what a file may hold, not bit flips
 * in libhdf5's own parser): datasets of any spo dtype and of odd ranks,
 * shapes, layouts (contiguous, chunked, compact) and contents (NaN, Inf),
 * root attributes of every type with any bytes (spo_schema, model_id, step,
 * ...), groups, soft links, external links, external storage and virtual
 * datasets pointing at other files. The image is fed to spo_h5_open("-")
 * through stdin; the file is listed (counting NaN/Inf), checked against
 * every built-in schema, its attributes and small datasets read, and it is
 * opened once more with a schema to validate against.
 * Nothing may crash or leak; every failure leaves one line without control
 * bytes. Datasets over 2^18 elements are not built (sizes: issue 9 class 3).
 * Build and run with `sh tests/fuzz/run.sh SECONDS h5`. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "fuzz_msg.h"
#include "io/h5io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *p;
    size_t n, i;
} cur;

static unsigned byte(cur *c) { return c->i < c->n ? c->p[c->i++] : 0; }

static const char *const dsnames[] = {"/latents", "/children", "/x0_hat", "/eps", "/parent_eps", "/prompt_id",
                                      "/cond", "/uncond", "/scores", "/key", "/win", "/lose", "/chosen",
                                      "/timestep", "/prompts", "/g/d"};
static const char *const atnames[] = {"spo_schema", "model_id", "seed", "step", "num_steps", "timestep",
                                      "K", "guidance", "eta", "lora_id", "history", "threshold",
                                      "child_timestep", "latent_size", "scheduler", "x"};
static const char *const tags[] = {"pool/1", "state/1", "embeds/1", "scores/1", "pairs/1", "pool/2", "", "lora/1"};
static const int64_t dimv[] = {0, 1, 2, 3, 4, 5, 7, 8, 16, 77, 768, 65536, (int64_t)1 << 31, (int64_t)1 << 40,
                               -1, (int64_t)1 << 62};

static char dir[64], img[128];

static void cleanup(void)
{
    unlink(img);
    rmdir(dir);
}

static hid_t dtype(unsigned k)
{
    static const hid_t *const t[] = {&H5T_NATIVE_FLOAT_g, &H5T_NATIVE_INT32_g, &H5T_NATIVE_INT64_g,
                                     &H5T_NATIVE_DOUBLE_g, &H5T_NATIVE_UINT8_g};
    if (k % 7 == 5) { /* IEEE half, as spo writes f16 */
        hid_t h = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(h, 15, 10, 5, 0, 10);
        H5Tset_size(h, 2);
        H5Tset_ebias(h, 15);
        H5Tset_precision(h, 16);
        return h;
    }
    if (k % 7 == 6) {
        hid_t s = H5Tcopy(H5T_C_S1);
        H5Tset_size(s, H5T_VARIABLE);
        return s;
    }
    return H5Tcopy(*t[k % 7 % 5]);
}

static void add_dataset(hid_t f, cur *c, int how)
{
    const char *name = dsnames[byte(c) % 16];
    int rank = (int)(byte(c) % 6);
    hsize_t dims[5], maxd[5], chunk[5];
    int64_t total = 1;
    for (int i = 0; i < rank; i++) {
        int64_t v = dimv[byte(c) % 16];
        if (v < 0) v = 1;
        dims[i] = (hsize_t)v;
        maxd[i] = H5S_UNLIMITED;
        chunk[i] = 1;
        if (v && total > ((int64_t)1 << 18) / v) total = (int64_t)1 << 19;
        else total *= v;
    }
    if (total > ((int64_t)1 << 18)) return;
    hid_t t = dtype(byte(c));
    unsigned lay = byte(c) % 3;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t sp = rank ? H5Screate_simple(rank, dims, lay == 1 ? maxd : NULL) : H5Screate(H5S_SCALAR);
    if (lay == 1 && rank) H5Pset_chunk(dcpl, rank, chunk);
    if (lay == 2 && total * 8 < 60000) H5Pset_layout(dcpl, H5D_COMPACT);
    if (how == 1) H5Pset_external(dcpl, "/etc/hostname", 0, H5F_UNLIMITED);
    if (how == 2 && rank) {
        hid_t src = H5Screate_simple(rank, dims, NULL);
        H5Pset_virtual(dcpl, sp, "/etc/spo-fuzz-src.h5", "/d", src);
        H5Sclose(src);
    }
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, name, t, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0 && how == 0 && total > 0 && byte(c) % 2 && H5Tget_class(t) != H5T_STRING) {
        size_t es = H5Tget_size(t);
        unsigned char *b = calloc((size_t)total, es);
        if (b) {
            /* some bytes from the input, the rest a pattern (NaN/Inf appear) */
            for (size_t i = 0; i < (size_t)total * es; i++) b[i] = c->i < c->n ? (unsigned char)byte(c) : (unsigned char)(i * 37);
            H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
            free(b);
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Tclose(t);
}

static void add_attr(hid_t f, cur *c)
{
    const char *name = atnames[byte(c) % 16];
    unsigned k = byte(c) % 6;
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t sp = H5Screate(H5S_SCALAR), t, a;
    char s[64];
    size_t n = byte(c) % 40;
    for (size_t i = 0; i < n; i++) s[i] = (char)byte(c);
    s[n] = 0;
    if (!strcmp(name, "spo_schema") && k < 2 && byte(c) % 2) n = strlen(strcpy(s, tags[byte(c) % 8]));
    if (k == 0 || k == 1) { /* fixed-length (any bytes) or variable-length string */
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, k == 0 ? (n ? n : 1) : H5T_VARIABLE);
        a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        const char *v = s;
        if (a >= 0) H5Awrite(a, t, k == 0 ? (const void *)s : (const void *)&v);
    } else if (k == 2 || k == 3) { /* integer, floating */
        int64_t iv = (int64_t)dimv[byte(c) % 16] - (byte(c) % 3);
        double dv = (double)iv / 3.0;
        t = H5Tcopy(k == 2 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE);
        a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Awrite(a, t, k == 2 ? (const void *)&iv : (const void *)&dv);
    } else { /* an array of two, or an empty attribute */
        H5Sclose(sp);
        hsize_t two = k == 4 ? 2 : 0;
        sp = k == 4 ? H5Screate_simple(1, &two, NULL) : H5Screate(H5S_NULL);
        t = H5Tcopy(H5T_NATIVE_INT32);
        a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        int32_t v[2] = {1, 2};
        if (a >= 0 && k == 4) H5Awrite(a, t, v);
    }
    if (a >= 0) H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
}

/* the file image the program builds, in a malloc'd buffer */
static void *build(cur *c, size_t *len)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("spo-fuzz-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) abort();
    for (int ops = 0; c->i < c->n && ops < 24; ops++) {
        unsigned op = byte(c) % 8;
        if (op <= 2) add_dataset(f, c, 0);
        else if (op <= 4) add_attr(f, c);
        else if (op == 5) add_dataset(f, c, 1 + (int)(byte(c) % 2)); /* external storage or virtual */
        else if (op == 6) H5Lcreate_external("/etc/spo-fuzz-other.h5", "/d", f, dsnames[byte(c) % 16], H5P_DEFAULT, H5P_DEFAULT);
        else H5Lcreate_soft(dsnames[byte(c) % 16], f, dsnames[byte(c) % 16], H5P_DEFAULT, H5P_DEFAULT);
    }
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    void *b = n > 0 ? malloc((size_t)n) : NULL;
    if (!b || H5Fget_file_image(f, b, (size_t)n) != n) abort();
    H5Fclose(f);
    *len = (size_t)n;
    return b;
}

static int open_stdin(spo_h5 **f, const char *schema)
{
    if (!freopen(img, "rb", stdin)) abort();
    int rc = spo_h5_open(f, "-", schema, NULL);
    if (rc) check_msg();
    return rc;
}

static void read_all(const spo_h5 *f)
{
    spo_fileinfo fi;
    if (spo_h5_listing(f, &fi, 1)) {
        check_msg();
        return;
    }
    char s[256];
    int64_t iv;
    double dv;
    for (int i = 0; i < fi.nat; i++) {
        if (spo_h5_get_attr_str(f, NULL, fi.at[i].name, s, sizeof s)) check_msg();
        if (spo_h5_get_attr_int(f, NULL, fi.at[i].name, &iv)) check_msg();
        if (spo_h5_get_attr_float(f, NULL, fi.at[i].name, &dv)) check_msg();
    }
    /* the check spo_h5_open(path, schema) runs, for every built-in schema */
    for (int i = 0; spo_schema_builtin_at(i); i++)
        if (spo_schema_check(spo_schema_builtin_at(i), &fi, "<stdin>", NULL)) check_msg();
    for (int i = 0; i < fi.nds; i++) {
        const spo_dsinfo *d = &fi.ds[i];
        int64_t n = 1;
        for (int k = 0; k < d->ndim && n <= 4096; k++) n = d->shape[k] > 4096 ? 4097 : n * d->shape[k];
        if (n > 4096 || n < 0) continue;
        if (d->type == SPO_T_STR) {
            char **str;
            int64_t m;
            if (!spo_h5_read_strings(f, d->name, &str, &m)) spo_strings_free(str, m);
            else check_msg();
            continue;
        }
        void *b = malloc((size_t)(n ? n : 1) * 8);
        if (!b) abort();
        if (spo_h5_read_f32(f, d->name, b, (size_t)n)) check_msg();
        if (spo_h5_read_i64(f, d->name, b, (size_t)n)) check_msg();
        free(b);
    }
    spo_fileinfo_free(&fi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    if (!dir[0]) {
        strcpy(dir, "/tmp/spo-fuzz-h5-XXXXXX");
        if (!mkdtemp(dir)) abort();
        snprintf(img, sizeof img, "%s/image.h5", dir);
        atexit(cleanup);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
    cur c = {data, size, 0};
    size_t len;
    void *b = build(&c, &len);
    FILE *fp = fopen(img, "wb");
    if (!fp || fwrite(b, 1, len, fp) != len || fclose(fp)) abort();
    free(b);
    spo_h5 *f;
    if (!open_stdin(&f, NULL)) {
        read_all(f);
        spo_h5_close(f);
    }
    if (!open_stdin(&f, tags[data[0] % 8])) spo_h5_close(f); /* and once through the open's own check */
    return 0;
}

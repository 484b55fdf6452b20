/* prompts.c — the prompt set: reading a file or stdin, appending with the
 * duplicate-id check, sharding (see prompts.h). The formats are parsed in
 * prompts_parse.c and archives in prompts_archive.c. */
#include "text/prompts.h"
#include "core/infile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "text/prompts_impl.h"

#define MAX_INPUT ((size_t)1 << 30) /* 1 GiB of prompts is surely a mistake */

int spo_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int k;
        unsigned v, lo;
        if (c >= 0xc2 && c <= 0xdf) k = 1, v = c & 0x1f, lo = 0x80;
        else if (c >= 0xe0 && c <= 0xef) k = 2, v = c & 0x0f, lo = 0x800;
        else if (c >= 0xf0 && c <= 0xf4) k = 3, v = c & 0x07, lo = 0x10000;
        else return 0;
        if (n - i - 1 < (size_t)k) return 0;
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            v = v << 6 | (s[i + j] & 0x3f);
        }
        if (v < lo || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

static uint64_t mix(int64_t id)
{
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* insert index i (p->id[i]) or find the index already holding its id */
static int slot_put(spo_pbuild *b, int i)
{
    size_t h = mix(b->p->id[i]) & b->mask;
    while (b->slot[h]) {
        int j = b->slot[h] - 1;
        if (b->p->id[j] == b->p->id[i]) return j;
        h = (h + 1) & b->mask;
    }
    b->slot[h] = i + 1;
    return -1;
}

static int rehash(spo_pbuild *b, size_t want)
{
    size_t sz = 64;
    while (sz < 2 * want) sz *= 2;
    int *s = calloc(sz, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    free(b->slot);
    b->slot = s;
    b->mask = sz - 1;
    for (int i = 0; i < b->p->n; i++) slot_put(b, i);
    return SPO_OK;
}

int spo_pb_init(spo_pbuild *b, spo_prompts *p)
{
    memset(b, 0, sizeof *b);
    b->p = p;
    b->cap = p->n;
    return rehash(b, (size_t)p->n + 16);
}

void spo_pb_done(spo_pbuild *b)
{
    free(b->slot);
    b->slot = NULL;
}

int spo_pb_add(spo_pbuild *b, const char *s, size_t len, int has_id, int64_t id)
{
    spo_prompts *p = b->p;
    if (memchr(s, 0, len)) return spo_err(SPO_EINVAL, "NUL byte in the prompt");
    if (!spo_utf8_valid(s, len)) return spo_err(SPO_EINVAL, "invalid UTF-8");
    if (p->n == 0x7fffffff) return spo_err(SPO_EINVAL, "too many prompts");
    if (p->n == b->cap) {
        int cap = b->cap < 16 ? 16 : b->cap > 0x3fffffff ? 0x7fffffff : 2 * b->cap;
        char **t = realloc(p->text, (size_t)cap * sizeof *t);
        if (t) p->text = t;
        int64_t *d = t ? realloc(p->id, (size_t)cap * sizeof *d) : NULL;
        if (!d) return spo_err(SPO_EIO, "out of memory");
        p->id = d;
        b->cap = cap;
    }
    if (2 * ((size_t)p->n + 1) > b->mask + 1 && rehash(b, 2 * ((size_t)p->n + 1))) return SPO_EIO;
    char *c = malloc(len + 1);
    if (!c) return spo_err(SPO_EIO, "out of memory");
    memcpy(c, s, len);
    c[len] = 0;
    p->text[p->n] = c;
    p->id[p->n] = has_id ? id : p->n;
    int j = slot_put(b, p->n);
    if (j >= 0) {
        free(c);
        return spo_err(SPO_EINVAL, "duplicate id %lld (already the id of prompt #%d)", (long long)p->id[p->n], j);
    }
    p->n++;
    return SPO_OK;
}

void spo_prompts_truncate(spo_prompts *p, int n)
{
    for (int i = n; i < p->n; i++) free(p->text[i]);
    if (n < p->n) p->n = n;
}

void spo_prompts_free(spo_prompts *p)
{
    if (!p) return;
    spo_prompts_truncate(p, 0);
    free(p->text);
    free(p->id);
    memset(p, 0, sizeof *p);
}

int spo_prompts_shard(spo_prompts *p, int i, int n)
{
    if (n < 1 || i < 0 || i >= n) return spo_err(SPO_EINVAL, "invalid shard %d/%d (need 0 <= I < N)", i, n);
    int k = 0;
    for (int j = 0; j < p->n; j++) {
        if (j % n == i) {
            p->text[k] = p->text[j];
            p->id[k++] = p->id[j];
        } else
            free(p->text[j]);
    }
    p->n = k;
    return SPO_OK;
}

int spo_shard_parse(const char *s, int *i, int *n)
{
    char *e;
    errno = 0;
    long a = strtol(s, &e, 10);
    if (e == s || *e != '/' || errno || s[0] == '-' || s[0] == '+' || s[0] == ' ') goto bad;
    const char *t = e + 1;
    long b = strtol(t, &e, 10);
    if (e == t || *e || errno || t[0] == '-' || t[0] == '+' || t[0] == ' ') goto bad;
    if (b < 1 || b > 1000000 || a >= b) goto bad;
    *i = (int)a;
    *n = (int)b;
    return SPO_OK;
bad:
    return spo_err(SPO_EINVAL, "invalid shard '%s' (expected I/N with 0 <= I < N)", s);
}

/* the whole of a file or stdin, NUL-terminated */
static int slurp(const char *path, const char *shown, char **out, size_t *len)
{
    FILE *fp = stdin;
    if (strcmp(path, "-")) {
        struct stat st;
        if (stat(path, &st))
            return spo_err(errno == ENOENT || errno == ENOTDIR ? SPO_EINVAL : SPO_EIO, "%s: %s", shown,
                           strerror(errno));
        if (S_ISDIR(st.st_mode)) return spo_err(SPO_EINVAL, "%s: is a directory", shown);
        int orc = spo_fopen_in(&fp, path);
        if (orc) return orc;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    int rc = b ? SPO_OK : spo_err(SPO_EIO, "out of memory");
    while (!rc) {
        if (n + 1 == cap) {
            char *nb = cap < MAX_INPUT ? realloc(b, 2 * cap) : NULL;
            if (!nb) {
                rc = cap < MAX_INPUT ? spo_err(SPO_EIO, "%s: out of memory", shown)
                                     : spo_err(SPO_EINVAL, "%s: larger than 1 GiB", shown);
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - 1 - n, fp);
        n += k;
        if (k == 0) break;
    }
    if (!rc && ferror(fp)) rc = spo_err(SPO_EIO, "%s: read error: %s", shown, strerror(errno));
    if (fp != stdin) fclose(fp);
    if (rc) {
        free(b);
        return rc;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return SPO_OK;
}

int spo_prompts_read(spo_prompts *p, const char *path)
{
    memset(p, 0, sizeof *p);
    int stdin_ = !strcmp(path, "-");
    const char *shown = stdin_ ? "<stdin>" : path;
    char *buf = NULL;
    size_t len = 0;
    int rc = slurp(path, shown, &buf, &len);
    if (rc) return rc;
    spo_pformat f = stdin_ ? SPO_PF_AUTO : spo_prompts_format_of(path);
    rc = spo_prompts_parse(p, shown, buf, len, f);
    free(buf);
    if (!rc && p->n == 0) rc = spo_err(SPO_EINVAL, "%s: no prompts", shown);
    if (rc) spo_prompts_free(p);
    return rc;
}

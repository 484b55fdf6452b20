/* prompts.c — the prompt set: reading a file or stdin, parsing a buffer in
 * any format, sharding (see prompts.h). The set is built in prompts_buf.c,
 * the formats are parsed in prompts_parse.c and archives in
 * prompts_archive.c; the files depend one way: prompts -> archive -> parse
 * -> buf. */
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
    int rc = b ? SPO_OK : spo_err(SPO_EIO, "%s: out of memory", shown);
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

int spo_prompts_parse(spo_prompts *p, const char *name, const char *buf, size_t len, spo_pformat f)
{
    int n0 = p->n;
    spo_pbuild b;
    int rc = spo_pb_init(&b, p);
    if (rc) return spo_err_prefix(rc, "%s", name);
    if (f == SPO_PF_AUTO) f = spo_prompts_sniff(buf, len);
    if (f == SPO_PF_ARCHIVE) rc = spo_prompts_archive(&b, name, buf, len);
    else rc = spo_prompts_parse_into(&b, name, buf, len, f);
    spo_pb_done(&b);
    if (rc) spo_prompts_truncate(p, n0);
    return rc;
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

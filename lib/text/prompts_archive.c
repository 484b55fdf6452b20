/* prompts_archive.c — a prompt set packed in tar (plain, gzip, bzip2, xz,
 * zstd) or zip, read with libarchive from memory (see prompts.h).
 *
 * Only the tar and zip readers and the in-process decompressors are
 * enabled: formats such as mtree can name files outside the archive, and
 * some filters run external programs. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "text/prompts.h"
#include "text/prompts_impl.h"

#define MAX_MEMBER ((size_t)1 << 30)

static int macos_meta(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return !strncmp(path, "__MACOSX/", 9) || strstr(path, "/__MACOSX/") || !strncmp(base, "._", 2);
}

/* libarchive's message or a fallback */
static const char *why(struct archive *a)
{
    const char *s = archive_error_string(a);
    return s && *s ? s : "corrupt archive";
}

/* read the current member's data into a malloc'd buffer */
static int member_data(struct archive *a, const char *name, const char *path, char **out, size_t *len)
{
    size_t cap = 1 << 12, n = 0;
    char *b = malloc(cap);
    if (!b) return spo_err(SPO_EIO, "%s: member %s: out of memory", name, path);
    for (;;) {
        if (cap - n < 4096) {
            char *nb = cap < MAX_MEMBER ? realloc(b, 2 * cap) : NULL;
            if (!nb) {
                free(b);
                return cap < MAX_MEMBER ? spo_err(SPO_EIO, "%s: member %s: out of memory", name, path)
                                        : spo_err(SPO_EINVAL, "%s: member %s: larger than 1 GiB", name, path);
            }
            b = nb;
            cap *= 2;
        }
        la_ssize_t k = archive_read_data(a, b + n, cap - n - 1);
        if (k < 0) {
            int rc = spo_err(SPO_EINVAL, "%s: member %s: %s", name, path, why(a));
            free(b);
            return rc;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return SPO_OK;
}

static int one_member(spo_pbuild *b, struct archive *a, struct archive_entry *e, const char *name)
{
    const char *path = archive_entry_pathname(e);
    if (!path) path = "?";
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFDIR || macos_meta(path)) return SPO_OK;
    if (type != AE_IFREG) return spo_err(SPO_EINVAL, "%s: member %s: not a regular file", name, path);
    spo_pformat f = spo_prompts_format_of(path);
    if (f != SPO_PF_TEXT && f != SPO_PF_JSON && f != SPO_PF_JSONL)
        return spo_err(SPO_EINVAL, "%s: member %s: not a prompt file (.txt, .json or .jsonl)", name, path);
    char *buf = NULL, shown[512];
    size_t len = 0;
    int rc = member_data(a, name, path, &buf, &len);
    if (rc) return rc;
    snprintf(shown, sizeof shown, "%s: member %s", name, path);
    rc = spo_prompts_parse_into(b, shown, buf, len, f);
    free(buf);
    return rc;
}

int spo_prompts_archive(spo_pbuild *b, const char *name, const char *buf, size_t len)
{
    struct archive *a = archive_read_new();
    if (!a) return spo_err(SPO_EIO, "%s: out of memory", name);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_lzma(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_format_zip(a);
    int rc = SPO_OK;
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        rc = spo_err(SPO_EINVAL, "%s: not a readable archive: %s", name, why(a));
        archive_read_free(a);
        return rc;
    }
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            rc = spo_err(SPO_EINVAL, "%s: %s", name, why(a));
            break;
        }
        if ((rc = one_member(b, a, e, name))) break;
    }
    archive_read_free(a);
    return rc;
}

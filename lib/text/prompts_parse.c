/* prompts_parse.c — the prompt file formats: text, JSON, JSON lines, and
 * the choice between them by extension or content (see prompts.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "text/prompts.h"
#include "text/prompts_impl.h"

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

spo_pformat spo_prompts_format_of(const char *name)
{
    static const char *const arch[] = {".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz",
                                       ".txz", ".tar.zst", ".tzst", ".zip", NULL};
    if (ends_with(name, ".txt")) return SPO_PF_TEXT;
    if (ends_with(name, ".json")) return SPO_PF_JSON;
    if (ends_with(name, ".jsonl") || ends_with(name, ".ndjson")) return SPO_PF_JSONL;
    for (int i = 0; arch[i]; i++)
        if (ends_with(name, arch[i])) return SPO_PF_ARCHIVE;
    return SPO_PF_AUTO;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static size_t skip_bom(const char *b, size_t n) { return n >= 3 && !memcmp(b, "\xef\xbb\xbf", 3) ? 3 : 0; }

spo_pformat spo_prompts_sniff(const char *b, size_t n)
{
    const unsigned char *u = (const unsigned char *)b;
    if ((n >= 2 && u[0] == 0x1f && u[1] == 0x8b) || (n >= 3 && !memcmp(b, "BZh", 3)) ||
        (n >= 6 && !memcmp(b, "\xfd" "7zXZ\0", 6)) || (n >= 4 && !memcmp(b, "\x28\xb5\x2f\xfd", 4)) ||
        (n >= 4 && (!memcmp(b, "PK\3\4", 4) || !memcmp(b, "PK\5\6", 4))) ||
        (n >= 262 && !memcmp(b + 257, "ustar", 5)))
        return SPO_PF_ARCHIVE;
    size_t i = skip_bom(b, n);
    while (i < n && (is_space(b[i]) || b[i] == '\n')) i++;
    if (i < n && b[i] == '[') return SPO_PF_JSON;
    if (i < n && (b[i] == '{' || b[i] == '"')) return SPO_PF_JSONL;
    return SPO_PF_TEXT;
}

/* next line of b[*pos..n): start and length without '\n' and a trailing '\r' */
static int next_line(const char *b, size_t n, size_t *pos, const char **s, size_t *len)
{
    if (*pos >= n) return 0;
    const char *e = memchr(b + *pos, '\n', n - *pos);
    size_t end = e ? (size_t)(e - b) : n;
    *s = b + *pos;
    *len = end - *pos;
    if (*len && (*s)[*len - 1] == '\r') (*len)--;
    *pos = end + 1;
    return 1;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i])) return 0;
    return 1;
}

static int parse_text(spo_pbuild *b, const char *name, const char *buf, size_t n)
{
    size_t pos = skip_bom(buf, n);
    const char *s;
    size_t len;
    for (long line = 1; next_line(buf, n, &pos, &s, &len); line++) {
        if (blank(s, len)) continue;
        int rc = spo_pb_add(b, s, len, 0, 0);
        if (rc) return spo_err_prefix(rc, "%s: line %ld", name, line);
    }
    return SPO_OK;
}

/* line number (1-based) of position k in buf */
static long line_of(const char *buf, size_t k)
{
    long l = 1;
    for (size_t i = 0; i < k; i++) l += buf[i] == '\n';
    return l;
}

/* one item: a string, or an object with caption/prompt/text and maybe id;
 * errors without location */
static int add_item(spo_pbuild *b, const cJSON *it)
{
    if (cJSON_IsString(it)) return spo_pb_add(b, it->valuestring, strlen(it->valuestring), 0, 0);
    if (!cJSON_IsObject(it)) return spo_err(SPO_EINVAL, "not a string or an object with a 'caption'");
    static const char *const keys[] = {"caption", "prompt", "text"};
    const cJSON *c = NULL;
    const char *key = keys[0];
    for (int i = 0; i < 3 && !c; i++) c = cJSON_GetObjectItemCaseSensitive(it, key = keys[i]);
    if (!c) return spo_err(SPO_EINVAL, "no 'caption' string (nor 'prompt' or 'text')");
    if (!cJSON_IsString(c)) return spo_err(SPO_EINVAL, "'%s' is not a string", key);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    int64_t v = 0;
    if (id) {
        double d = id->valuedouble;
        /* integers up to 2^53 are exact in a double */
        if (!cJSON_IsNumber(id) || d < 0 || d > 9007199254740992.0 || d != floor(d))
            return spo_err(SPO_EINVAL, "'id' is not a non-negative integer");
        v = (int64_t)d;
    }
    return spo_pb_add(b, c->valuestring, strlen(c->valuestring), id != NULL, v);
}

/* offset of the first \u0000 escape in JSON text s[0..n), or n: cJSON
 * decodes it to a NUL byte, which would silently cut the string there
 * (backslashes only occur in strings, in pairs or before an escape) */
static size_t json_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && n - i >= 6 && !memcmp(s + i + 2, "0000", 4)) return i;
        i++;
    }
    return n;
}

static const char nul_msg[] = "NUL byte in a string (\\u0000)";

/* parse one JSON value spanning all of s[0..n) (whitespace around it allowed);
 * *where gets the byte offset of a syntax error */
static cJSON *parse_value(const char *s, size_t n, size_t *where)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!j) {
        *where = end && end >= s && end <= s + n ? (size_t)(end - s) : 0;
        return NULL;
    }
    size_t k = (size_t)(end - s);
    while (k < n && (is_space(s[k]) || s[k] == '\n')) k++;
    if (k < n) {
        cJSON_Delete(j);
        *where = k;
        return NULL;
    }
    return j;
}

static int parse_json(spo_pbuild *b, const char *name, const char *buf, size_t n)
{
    size_t off = skip_bom(buf, n), where = 0;
    size_t k = off;
    while (k < n && (is_space(buf[k]) || buf[k] == '\n')) k++;
    if (k == n)
        return spo_err(SPO_EINVAL, "%s: empty file (expected a JSON list of prompts)", name);
    size_t z = json_nul(buf, n);
    if (z < n) return spo_err(SPO_EINVAL, "%s: line %ld: %s", name, line_of(buf, z), nul_msg);
    cJSON *j = parse_value(buf + off, n - off, &where);
    if (!j) return spo_err(SPO_EINVAL, "%s: invalid JSON at line %ld", name, line_of(buf, off + where));
    int rc = SPO_OK;
    if (!cJSON_IsArray(j))
        rc = spo_err(SPO_EINVAL, "%s: expected a JSON list of prompts (strings or objects with a 'caption')", name);
    int i = 0;
    for (const cJSON *it = j->child; it && !rc; it = it->next, i++)
        if ((rc = add_item(b, it))) spo_err_prefix(rc, "%s: item %d", name, i);
    cJSON_Delete(j);
    return rc;
}

static int parse_jsonl(spo_pbuild *b, const char *name, const char *buf, size_t n)
{
    size_t pos = skip_bom(buf, n), where;
    const char *s;
    size_t len;
    for (long line = 1; next_line(buf, n, &pos, &s, &len); line++) {
        if (blank(s, len)) continue;
        if (json_nul(s, len) < len) return spo_err(SPO_EINVAL, "%s: line %ld: %s", name, line, nul_msg);
        cJSON *j = parse_value(s, len, &where);
        if (!j) return spo_err(SPO_EINVAL, "%s: line %ld: invalid JSON", name, line);
        int rc = add_item(b, j);
        cJSON_Delete(j);
        if (rc) return spo_err_prefix(rc, "%s: line %ld", name, line);
    }
    return SPO_OK;
}

int spo_prompts_parse_into(spo_pbuild *b, const char *name, const char *buf, size_t len, spo_pformat f)
{
    if (f == SPO_PF_TEXT) return parse_text(b, name, buf, len);
    if (f == SPO_PF_JSON) return parse_json(b, name, buf, len);
    if (f == SPO_PF_JSONL) return parse_jsonl(b, name, buf, len);
    return spo_err(SPO_EINVAL, "%s: not a text, JSON or JSON lines prompt file", name);
}

/* tok_load.c — load a CLIP tokenizer directory (vocab.json, merges.txt,
 * tokenizer_config.json, special_tokens_map.json) into hash tables, and
 * write the byte-level tokenizer of the tiny test model. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "core/err.h"
#include "core/infile.h"
#include "text/tok_impl.h"
#include "text/unicode.h"

/* ---- strings ---------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

long spo_strtab_find(const spo_strtab *s, const char *p, size_t n)
{
    if (!s->nslot) return -1;
    uint32_t mask = s->nslot - 1;
    for (uint32_t h = (uint32_t)hash_bytes(p, n) & mask;; h = (h + 1) & mask) {
        uint32_t e = s->slot[h];
        if (!e) return -1;
        e--;
        if (s->len[e] == n && memcmp(s->pool + s->off[e], p, n) == 0) return e;
    }
}

static int strtab_rehash(spo_strtab *s, uint32_t nslot)
{
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot) return spo_err(SPO_EIO, "out of memory");
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t h = (uint32_t)hash_bytes(s->pool + s->off[i], s->len[i]) & (nslot - 1);
        while (slot[h]) h = (h + 1) & (nslot - 1);
        slot[h] = i + 1;
    }
    free(s->slot);
    s->slot = slot;
    s->nslot = nslot;
    return SPO_OK;
}

/* index of (p, n), added when missing; -1 on out of memory */
static long strtab_intern(spo_strtab *s, const char *p, size_t n)
{
    long e = spo_strtab_find(s, p, n);
    if (e >= 0) return e;
    if (n > UINT32_MAX || s->n >= INT32_MAX / 2) return -1;
    if (2 * (s->n + 1) > s->nslot && strtab_rehash(s, s->nslot ? 2 * s->nslot : 1024)) return -1;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 1024;
        uint32_t *off = realloc(s->off, cap * sizeof *off);
        if (off) s->off = off;
        uint32_t *len = realloc(s->len, cap * sizeof *len);
        if (len) s->len = len;
        int32_t *id = realloc(s->id, cap * sizeof *id);
        if (id) s->id = id;
        if (!off || !len || !id) return -1;
        s->cap = cap;
    }
    if (s->pool_len + n > s->pool_cap) {
        size_t cap = s->pool_cap ? 2 * s->pool_cap : 1 << 16;
        while (cap < s->pool_len + n) cap *= 2;
        char *pool = realloc(s->pool, cap);
        if (!pool) return -1;
        s->pool = pool;
        s->pool_cap = cap;
    }
    if (s->pool_len > UINT32_MAX - n) return -1;
    memcpy(s->pool + s->pool_len, p, n);
    s->off[s->n] = (uint32_t)s->pool_len;
    s->len[s->n] = (uint32_t)n;
    s->id[s->n] = -1;
    s->pool_len += n;
    uint32_t mask = s->nslot - 1, h = (uint32_t)hash_bytes(p, n) & mask;
    while (s->slot[h]) h = (h + 1) & mask;
    s->slot[h] = s->n + 1;
    return s->n++;
}

/* ---- merges ----------------------------------------------------------- */

static uint32_t hash_pair(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

const spo_pair *spo_pair_find(const spo_tok *t, uint32_t a, uint32_t b)
{
    if (!t->npair_slot) return NULL;
    uint64_t key = (uint64_t)a << 32 | b;
    uint32_t mask = t->npair_slot - 1;
    for (uint32_t h = hash_pair(key) & mask;; h = (h + 1) & mask) {
        const spo_pair *p = &t->pair[h];
        if (p->rank < 0) return NULL;
        if (p->key == key) return p;
    }
}

/* (a, b) -> (rank, merged); a later line with the same pair wins, as in
 * Python's dict(zip(merges, ranks)). Table sized beforehand (no growth). */
static void pair_put(spo_tok *t, uint32_t a, uint32_t b, int32_t rank, uint32_t merged)
{
    uint64_t key = (uint64_t)a << 32 | b;
    uint32_t mask = t->npair_slot - 1, h = hash_pair(key) & mask;
    while (t->pair[h].rank >= 0 && t->pair[h].key != key) h = (h + 1) & mask;
    if (t->pair[h].rank < 0) t->npair++;
    t->pair[h].key = key;
    t->pair[h].rank = rank;
    t->pair[h].merged = merged;
}

/* ---- files ------------------------------------------------------------ */

/* whole file, NUL-terminated; *out NULL and SPO_OK when missing and optional */
static int read_file(const char *dir, const char *name, int optional, char **out, size_t *len)
{
    char path[4096];
    *out = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return spo_err(SPO_EINVAL, "%s/%s: path too long", dir, name);
    FILE *f;
    int orc = spo_fopen_in(&f, path);
    if (orc) {
        if (optional && errno == ENOENT) return SPO_OK;
        return orc;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return spo_err(SPO_EIO, "%s: read failed", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return SPO_OK;
}

static int load_vocab(spo_tok *t, const char *dir)
{
    char *text;
    int rc = read_file(dir, "vocab.json", 0, &text, NULL);
    if (rc) return rc;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return spo_err(SPO_EINVAL, "%s/vocab.json: not a JSON object", dir);
    }
    /* size the table once: the vocabulary plus merge strings not in it */
    uint32_t n = 0, nslot = 1024;
    for (cJSON *e = j->child; e; e = e->next) n++;
    while (nslot < 4 * (uint64_t)n && nslot < (1u << 30)) nslot *= 2;
    rc = strtab_rehash(&t->s, nslot);
    for (cJSON *e = j->child; e && !rc; e = e->next) {
        double v = cJSON_GetNumberValue(e);
        if (!cJSON_IsNumber(e) || v < 0 || v >= INT32_MAX || v != (double)(int32_t)v) {
            rc = spo_err(SPO_EINVAL, "%s/vocab.json: token \"%.40s\": id is not an integer >= 0", dir, e->string);
            break;
        }
        long k = strtab_intern(&t->s, e->string, strlen(e->string));
        if (k < 0) {
            rc = spo_err(SPO_EIO, "out of memory");
            break;
        }
        t->s.id[k] = (int32_t)v; /* a repeated key: the last one wins, as json.load */
        if ((int32_t)v >= t->vocab_size) t->vocab_size = (int32_t)v + 1;
    }
    cJSON_Delete(j);
    return rc;
}

static int is_space_ascii(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Like CLIPTokenizer: text.strip().split("\n")[1 : 48895], each line split
 * on whitespace; lines that are not exactly two parts are never pairs. */
static int load_merges(spo_tok *t, const char *dir)
{
    char *text;
    size_t len;
    int rc = read_file(dir, "merges.txt", 0, &text, &len);
    if (rc) return rc;
    char *p = text, *end = text + len;
    while (p < end && is_space_ascii(*p)) p++;
    while (end > p && is_space_ascii(end[-1])) end--;
    /* a table for up to 48894 pairs at load <= 1/2 */
    t->npair_slot = 1 << 17;
    t->pair = malloc(t->npair_slot * sizeof *t->pair);
    if (!t->pair) {
        free(text);
        return spo_err(SPO_EIO, "out of memory");
    }
    for (uint32_t i = 0; i < t->npair_slot; i++) t->pair[i].rank = -1;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end; /* the header line */
    int32_t rank = 0;
    char *joined = NULL;
    size_t jcap = 0;
    while (p < end && rank < 49152 - 256 - 2) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *part[3];
        size_t plen[3];
        int np = 0;
        for (char *q = p; q < eol && np < 3;) {
            while (q < eol && is_space_ascii(*q)) q++;
            if (q == eol) break;
            part[np] = q;
            while (q < eol && !is_space_ascii(*q)) q++;
            plen[np] = (size_t)(q - part[np]);
            np++;
        }
        if (np == 2) {
            if (plen[0] + plen[1] > jcap) {
                jcap = 2 * (plen[0] + plen[1]);
                free(joined);
                joined = malloc(jcap);
            }
            long a = strtab_intern(&t->s, part[0], plen[0]);
            long b = a < 0 ? -1 : strtab_intern(&t->s, part[1], plen[1]);
            long m = -1;
            if (b >= 0 && joined) {
                memcpy(joined, part[0], plen[0]);
                memcpy(joined + plen[0], part[1], plen[1]);
                m = strtab_intern(&t->s, joined, plen[0] + plen[1]);
            }
            if (m < 0) {
                rc = spo_err(SPO_EIO, "out of memory");
                break;
            }
            pair_put(t, (uint32_t)a, (uint32_t)b, rank, (uint32_t)m);
        }
        rank++;
        p = eol + 1;
    }
    free(joined);
    free(text);
    return rc;
}

/* a special token's string from a config: "s" or {"content": "s"} */
static const char *token_string(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_config(const char *dir, const char *name, char *tok[SPO_TOK_NSPECIAL], int *max_length)
{
    static const char *keys[SPO_TOK_NSPECIAL] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    char *text;
    int rc = read_file(dir, name, 1, &text, NULL);
    if (rc || !text) return rc;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return spo_err(SPO_EINVAL, "%s/%s: not a JSON object", dir, name);
    }
    for (int i = 0; i < SPO_TOK_NSPECIAL && !rc; i++) {
        const char *s = token_string(j, keys[i]);
        if (!s) continue;
        char *d = strdup(s);
        if (!d) rc = spo_err(SPO_EIO, "out of memory");
        free(tok[i]);
        tok[i] = d;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model_max_length");
    if (max_length && cJSON_IsNumber(m) && m->valuedouble >= 2 && m->valuedouble <= 1e6)
        *max_length = (int)m->valuedouble;
    cJSON_Delete(j);
    return rc;
}

static int set_specials(spo_tok *t, const char *dir, char *tok[SPO_TOK_NSPECIAL])
{
    static const char *keys[SPO_TOK_NSPECIAL] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (int i = 0; i < SPO_TOK_NSPECIAL; i++) {
        size_t n = strlen(tok[i]);
        long k = spo_strtab_find(&t->s, tok[i], n);
        if (k < 0 || t->s.id[k] < 0 || n == 0)
            return spo_err(SPO_EINVAL, "%s: %s \"%.40s\" is not in vocab.json", dir, keys[i], tok[i]);
        t->special_id[i] = t->s.id[k];
        t->special_cp[i] = malloc((n + 1) * sizeof(uint32_t));
        if (!t->special_cp[i]) return spo_err(SPO_EIO, "out of memory");
        t->special_n[i] = spo_utf8_decode(tok[i], n, t->special_cp[i]);
    }
    t->bos_id = t->special_id[0];
    t->eos_id = t->special_id[1];
    t->unk_id = t->special_id[2];
    t->pad_id = t->special_id[3];
    return SPO_OK;
}

/* the 512 base symbols: each byte's character, and with "</w>" */
static int intern_base(spo_tok *t)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n = spo_utf8_encode(spo_byte_char(b), buf);
        long k = strtab_intern(&t->s, buf, (size_t)n);
        memcpy(buf + n, "</w>", 4);
        long kw = strtab_intern(&t->s, buf, (size_t)n + 4);
        if (k < 0 || kw < 0) return spo_err(SPO_EIO, "out of memory");
        t->base[b] = (uint32_t)k;
        t->base_w[b] = (uint32_t)kw;
    }
    return SPO_OK;
}

uint32_t spo_byte_char(int b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    if (b <= 0x20) return 256 + (uint32_t)b;
    if (b <= 0xA0) return 256 + 33 + (uint32_t)(b - 0x7F);
    return 256 + 67; /* 0xAD */
}

int spo_tok_load(spo_tok **out, const char *dir)
{
    if (!out || !dir) return spo_err(SPO_EINVAL, "spo_tok_load: null argument");
    *out = NULL;
    spo_tok *t = calloc(1, sizeof *t);
    if (!t) return spo_err(SPO_EIO, "out of memory");
    t->max_length = 77;
    t->mode = SPO_TOK_FTFY;
    char *tok[SPO_TOK_NSPECIAL] = {strdup("<|startoftext|>"), strdup("<|endoftext|>"), strdup("<|endoftext|>"),
                                   strdup("<|endoftext|>")};
    int rc = (!tok[0] || !tok[1] || !tok[2] || !tok[3]) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    if (!rc) rc = load_vocab(t, dir);
    if (!rc) rc = load_merges(t, dir);
    if (!rc) rc = intern_base(t);
    if (!rc) rc = load_config(dir, "tokenizer_config.json", tok, &t->max_length);
    if (!rc) rc = load_config(dir, "special_tokens_map.json", tok, NULL);
    if (!rc) rc = set_specials(t, dir, tok);
    for (int i = 0; i < SPO_TOK_NSPECIAL; i++) free(tok[i]);
    if (rc) {
        spo_tok_free(t);
        return rc;
    }
    *out = t;
    return SPO_OK;
}

void spo_tok_free(spo_tok *t)
{
    if (!t) return;
    free(t->s.pool);
    free(t->s.off);
    free(t->s.len);
    free(t->s.id);
    free(t->s.slot);
    free(t->pair);
    for (int i = 0; i < SPO_TOK_NSPECIAL; i++) free(t->special_cp[i]);
    free(t);
}

int spo_tok_max_length(const spo_tok *t) { return t->max_length; }

static const char *const mode_names[] = {"basic", "ftfy", "fast"};

int spo_tok_set_mode(spo_tok *t, int mode)
{
    if (mode < SPO_TOK_BASIC || mode > SPO_TOK_FAST) return spo_err(SPO_EINVAL, "unknown tokenizer mode %d", mode);
    t->mode = mode;
    return SPO_OK;
}

int spo_tok_mode(const spo_tok *t) { return t->mode; }

const char *spo_tok_mode_name(int mode)
{
    return mode >= SPO_TOK_BASIC && mode <= SPO_TOK_FAST ? mode_names[mode] : "?";
}

int spo_tok_mode_parse(const char *name, int *mode)
{
    for (int m = SPO_TOK_BASIC; m <= SPO_TOK_FAST; m++)
        if (!strcmp(name, mode_names[m])) {
            *mode = m;
            return SPO_OK;
        }
    return spo_err(SPO_EINVAL, "unknown tokenizer mode '%s' (basic, ftfy or fast)", name);
}
int32_t spo_tok_vocab_size(const spo_tok *t) { return t->vocab_size; }

void spo_tok_special_ids(const spo_tok *t, int32_t *bos, int32_t *eos, int32_t *pad, int32_t *unk)
{
    if (bos) *bos = t->bos_id;
    if (eos) *eos = t->eos_id;
    if (pad) *pad = t->pad_id;
    if (unk) *unk = t->unk_id;
}

/* ---- the byte-level tokenizer ----------------------------------------- */

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return spo_err(SPO_EINVAL, "%s/%s: path too long", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? spo_err(SPO_EIO, "%s: write failed", path) : SPO_OK;
}

#define ADDED(s) "{\"__type\": \"AddedToken\", \"content\": \"" s "\", \"lstrip\": false, " \
                 "\"normalized\": true, \"rstrip\": false, \"single_word\": false}"
#define PLAIN(s) "{\"content\": \"" s "\", \"lstrip\": false, \"normalized\": true, \"rstrip\": false, " \
                 "\"single_word\": false}"

int spo_tok_write_bytelevel(const char *dir) { return spo_tok_write_bytelevel_ids(dir, 512, 513); }

int spo_tok_write_bytelevel_ids(const char *dir, int bos, int eos)
{
    return spo_tok_write_bytelevel_pad(dir, bos, eos, NULL);
}

int spo_tok_write_bytelevel_pad(const char *dir, int bos, int eos, const char *pad)
{
    if (!pad) pad = "<|endoftext|>";
    if (strlen(pad) > 64 || strchr(pad, '"') || strchr(pad, '\\'))
        return spo_err(SPO_EINVAL, "byte-level vocabulary: bad pad token");
    if (bos < 512 || eos < 512 || bos == eos) return spo_err(SPO_EINVAL, "byte-level vocabulary: bad special ids");
    if (!dir) return spo_err(SPO_EINVAL, "spo_tok_write_bytelevel: null directory");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return spo_err(SPO_EIO, "%s: %s", dir, strerror(errno));
    /* ids 0..255 follow bytes_to_unicode's order: printable bytes, then the rest */
    int order[256], n = 0;
    for (int b = 0; b < 256; b++)
        if (spo_byte_char(b) == (uint32_t)b) order[n++] = b;
    for (int b = 0; b < 256; b++)
        if (spo_byte_char(b) != (uint32_t)b) order[n++] = b;
    char *v = malloc(64 * 1024), *p = v;
    if (!v) return spo_err(SPO_EIO, "out of memory");
    *p++ = '{';
    for (int i = 0; i < 512; i++) {
        char ch[8];
        int len = spo_utf8_encode(spo_byte_char(order[i % 256]), ch);
        *p++ = '"';
        if (ch[0] == '"' || ch[0] == '\\') *p++ = '\\';
        memcpy(p, ch, (size_t)len);
        p += len;
        p += sprintf(p, "%s\":%d,", i < 256 ? "" : "</w>", i);
    }
    sprintf(p, "\"<|startoftext|>\":%d,\"<|endoftext|>\":%d}\n", bos, eos);
    int rc = write_text(dir, "vocab.json", v);
    free(v);
    if (!rc) rc = write_text(dir, "merges.txt", "#version: 0.2\n");
    char t[1024];
    snprintf(t, sizeof t,
             "{\n  \"add_prefix_space\": false,\n  \"bos_token\": " ADDED("<|startoftext|>") ",\n"
             "  \"do_lower_case\": true,\n  \"eos_token\": " ADDED("<|endoftext|>") ",\n"
             "  \"errors\": \"replace\",\n  \"model_max_length\": 77,\n"
             "  \"pad_token\": \"%s\",\n  \"tokenizer_class\": \"CLIPTokenizer\",\n"
             "  \"unk_token\": " ADDED("<|endoftext|>") "\n}\n", pad);
    if (!rc) rc = write_text(dir, "tokenizer_config.json", t);
    snprintf(t, sizeof t,
             "{\n  \"bos_token\": " PLAIN("<|startoftext|>") ",\n  \"eos_token\": " PLAIN("<|endoftext|>") ",\n"
             "  \"pad_token\": \"%s\",\n  \"unk_token\": " PLAIN("<|endoftext|>") "\n}\n", pad);
    if (!rc) rc = write_text(dir, "special_tokens_map.json", t);
    return rc;
}

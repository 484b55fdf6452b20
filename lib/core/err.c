/* err.c — per-thread error message (see err.h). */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char msg[1024];

/* length of the valid UTF-8 sequence at s (at most n bytes) that is not a
 * C1 control (U+0080..U+009F), else 0 */
static size_t utf8_ok(const unsigned char *s, size_t n)
{
    unsigned c = s[0], v, lo;
    size_t k;
    if (c >= 0xc2 && c <= 0xdf) k = 1, v = c & 0x1f, lo = 0xa0;
    else if (c >= 0xe0 && c <= 0xef) k = 2, v = c & 0x0f, lo = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) k = 3, v = c & 0x07, lo = 0x10000;
    else return 0;
    if (n < k + 1) return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[j] & 0x3f);
    }
    if (v < lo || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    return k + 1;
}

size_t spo_escape(char *dst, size_t cap, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    if (!cap) return 0;
    for (size_t i = 0; i < n && s[i];) {
        unsigned c = s[i];
        size_t k = c >= 0x80 ? utf8_ok(s + i, n - i) : (c >= 0x20 && c != 0x7f);
        if (c == '\n' || c == '\r' || c == '\t') {
            if (o + 1 >= cap) break;
            dst[o++] = ' ';
            i++;
        } else if (k) {
            if (o + k >= cap) break;
            memcpy(dst + o, s + i, k);
            o += k;
            i += k;
        } else {
            if (o + 4 >= cap) break;
            snprintf(dst + o, 5, "\\x%02x", c);
            o += 4;
            i++;
        }
    }
    dst[o] = 0;
    return o;
}

int spo_verr(int code, const char *fmt, va_list ap)
{
    char raw[sizeof msg];
    vsnprintf(raw, sizeof raw, fmt, ap);
    /* one line, no control characters: text from files is shown escaped */
    spo_escape(msg, sizeof msg, raw, sizeof raw);
    return code;
}

int spo_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spo_verr(code, fmt, ap);
    va_end(ap);
    return code;
}

int spo_err_prefix(int code, const char *fmt, ...)
{
    char raw[256], pre[256], old[sizeof msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    spo_escape(pre, sizeof pre, raw, sizeof raw);
    memcpy(old, msg, sizeof msg);
    size_t k = strlen(pre);
    if (k + 2 >= sizeof msg) k = sizeof msg - 3;
    memcpy(msg, pre, k);
    msg[k] = ':';
    msg[k + 1] = ' ';
    snprintf(msg + k + 2, sizeof msg - k - 2, "%.*s", (int)(sizeof msg - k - 3), old);
    return code;
}

const char *spo_errmsg(void) { return msg[0] ? msg : "unknown error"; }
void spo_err_clear(void) { msg[0] = 0; }

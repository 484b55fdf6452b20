/* err.c — per-thread error message (see err.h). */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char msg[1024];

int spo_verr(int code, const char *fmt, va_list ap)
{
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* keep it one line */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
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
    char pre[256], old[sizeof msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
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

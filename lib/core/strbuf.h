/* strbuf.h — formatted text appended to a fixed buffer, cut safely when it
 * is full (PNG text chunks, descriptions). */
#ifndef SPO_STRBUF_H
#define SPO_STRBUF_H

#include <stddef.h>

#include "core/err.h"

/* Append printf-style text to buf (cap bytes, *len used so far, always
 * NUL-terminated); text that does not fit is cut, *len never passes cap-1. */
void spo_appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) SPO_PRINTF(4, 5);

#endif

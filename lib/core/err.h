/* err.h — how the library reports failure.
 *
 * Every library function that can fail returns int: SPO_OK (0), SPO_EIO (1:
 * the work failed — I/O, memory, NaN) or SPO_EINVAL (2: the call or an input
 * is invalid). The codes equal the exit status a tool gives for them. The
 * message (one line, no tool prefix, no newline) is kept per thread and read
 * with spo_errmsg(). The library never prints and never exits.
 *
 * Messages often carry text from files (attribute values, prompts, member
 * names, JSON keys); every message is stored escaped by spo_escape, so no
 * file can send control sequences to the user's terminal. */
#ifndef SPO_ERR_H
#define SPO_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum { SPO_OK = 0, SPO_EIO = 1, SPO_EINVAL = 2 };

#if defined(__GNUC__)
#define SPO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SPO_PRINTF(a, b)
#endif

/* Set the message and return code, so `return spo_err(SPO_EINVAL, ...)`. */
int spo_err(int code, const char *fmt, ...) SPO_PRINTF(2, 3);
int spo_verr(int code, const char *fmt, va_list ap);
/* Prefix the current message with "prefix: " (e.g. a file name). Returns code. */
int spo_err_prefix(int code, const char *fmt, ...) SPO_PRINTF(2, 3);
const char *spo_errmsg(void);
/* Copy src[0..n) (stopping at a NUL) into dst (cap bytes, NUL-terminated,
 * cut at a character boundary when full) so it is safe on a terminal:
 * newline, CR and tab become a space; other control bytes (below 0x20,
 * 0x7f, the C1 controls U+0080..U+009F) and bytes that are not valid UTF-8
 * become \xNN; valid UTF-8 text is kept. Returns the length written. */
size_t spo_escape(char *dst, size_t cap, const char *src, size_t n);
/* Return the code of a failing call (non-zero) from the enclosing function:
 *   SPO_TRY(spo_cfg_int(j, "in_channels", 4, &c->in_channels)); */
#define SPO_TRY(call)                                                                                                  \
    do {                                                                                                               \
        int spo_try_rc_ = (call);                                                                                      \
        if (spo_try_rc_) return spo_try_rc_;                                                                           \
    } while (0)

void spo_err_clear(void);

#endif

/* fuzz_msg.h — shared by the fuzz targets: a failure must leave a message
 * of one line without control bytes (lib/core/err.h escapes file text). */
#ifndef SPO_FUZZ_MSG_H
#define SPO_FUZZ_MSG_H

#include <stdlib.h>

#include "core/err.h"

static inline void check_msg(void)
{
    const char *m = spo_errmsg();
    if (!*m) abort();
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f) abort();
}

#endif

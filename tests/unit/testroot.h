/* testroot.h — where a unit test finds the repository: root is SPO_ROOT
 * (tests/run.sh sets it) or ".", and fix(rel) the path of
 * tests/fixtures/rel (four rotating buffers: one call may use four paths).
 * Static, header only; setup calls root_init(). */
#ifndef SPO_TESTROOT_H
#define SPO_TESTROOT_H

#include <stdio.h>
#include <stdlib.h>

static char root[1024];

static inline void root_init(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
}

static inline const char *fix(const char *rel)
{
    static char b[4][2048];
    static int i;
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], "%s/tests/fixtures/%s", root, rel);
    return b[i];
}

#endif

/* testdev.h — the CPU device of a unit test and its cmocka group setup:
 * dev_setup finds the repository (root_init, testroot.h) and opens dev on
 * the CPU with two threads, dev_teardown closes it; CHECK_OK(x) fails the
 * test naming x, its code and message unless x is SPO_OK. Static, header
 * only; include after cmocka.h. */
#ifndef SPO_TESTDEV_H
#define SPO_TESTDEV_H

#include "core/err.h"
#include "ops/ops.h"
#include "testroot.h"

static spo_dev *dev;

static inline int dev_setup(void **st)
{
    (void)st;
    root_init();
    return spo_dev_open(&dev, SPO_DEV_CPU, 2) ? -1 : 0;
}

static inline int dev_teardown(void **st)
{
    (void)st;
    spo_dev_close(dev);
    return 0;
}

#define CHECK_OK(x)                                                                                               \
    do {                                                                                                          \
        int rc_ = (x);                                                                                            \
        if (rc_) fail_msg("%s: rc %d: %s", #x, rc_, spo_errmsg());                                                \
    } while (0)

#endif

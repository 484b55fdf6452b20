/* spo-guardprobe — for tests/cmd/guard.bats: on the CPU device, give an op
 * a host pointer (printed: refused under SPO_DEV_GUARD=1), then read a
 * device buffer from the host, which faults under the guard. Exit 0 when
 * neither is caught (the guard is off). */
#include <stdio.h>

#include "ops/ops.h"

int main(void)
{
    spo_dev *d;
    if (spo_dev_open(&d, SPO_DEV_CPU, 1)) return fprintf(stderr, "spo-guardprobe: %s\n", spo_errmsg()), 2;
    float host[4] = {1, 2, 3, 4}, *p = spo_dev_alloc(d, 4);
    if (!p || spo_dev_upload(d, p, host, 4)) return fprintf(stderr, "spo-guardprobe: %s\n", spo_errmsg()), 2;
    if (spo_scale(d, p, host, 2.0f, 4)) {
        printf("%s\n", spo_errmsg());
        fflush(stdout);
    }
    volatile float v = p[0]; /* faults under the guard */
    printf("read %g from device memory on the host\n", (double)v);
    spo_dev_free(d, p);
    spo_dev_close(d);
    return 0;
}

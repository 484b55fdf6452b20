/* clock.c — the monotonic clock (see clock.h). */
#include "core/clock.h"

#include <time.h>

double spo_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

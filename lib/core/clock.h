/* clock.h — a monotonic clock for the timings a job reports. */
#ifndef SPO_CLOCK_H
#define SPO_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double spo_seconds(void);

#endif

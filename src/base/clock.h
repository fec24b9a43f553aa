/*
 * clock.h - time. `now` values are monotonic milliseconds; wall time is used only where a
 * value must survive a restart (expiry clocks in durable state).
 */
#ifndef PETREL_BASE_CLOCK_H
#define PETREL_BASE_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds since an arbitrary point. */
uint64_t clock_now_ms(void);
/* Wall-clock seconds since the epoch. */
int64_t clock_wall_s(void);

#endif

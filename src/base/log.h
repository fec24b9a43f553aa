/*
 * log.h - one line per event: "<time> <level> <event> key=value ...".
 *
 * Levels can be switched on individually (Mosquitto's log_type). log_debug() costs a branch
 * when debug is off; hot paths log only at debug level.
 */
#ifndef PETREL_BASE_LOG_H
#define PETREL_BASE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

enum log_level {
    LOG_ERROR = 1 << 0,
    LOG_WARN = 1 << 1,
    LOG_NOTICE = 1 << 2,
    LOG_INFO = 1 << 3,
    LOG_DEBUG = 1 << 4,
};

/* Choose the enabled levels (a mask of enum log_level), the destinations and timestamps.
 * `file` may be NULL. The log takes ownership of `file`. */
void log_setup(unsigned levels, bool to_stderr, bool to_stdout, FILE *file, bool timestamps);
/* Release the log file, if any. */
void log_close(void);
bool log_enabled(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_write(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

/* For per-client noise: true at most `per_sec` times a second for the call site's `state`. */
struct log_ratelimit {
    _Atomic long window;
    _Atomic unsigned count;
};
bool log_ratelimit(struct log_ratelimit *state, unsigned per_sec);

#endif

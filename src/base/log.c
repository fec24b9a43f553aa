/*
 * log.c - see log.h. Lines are assembled in one buffer and written with a single call, so
 * concurrent writers never interleave within a line.
 */
#include "base/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned log_levels = LOG_ERROR | LOG_WARN | LOG_NOTICE | LOG_INFO;
static bool log_to_stderr = true;
static bool log_to_stdout;
static FILE *log_file;
static bool log_timestamps = true;

void
log_setup(unsigned levels, bool to_stderr, bool to_stdout, FILE *file, bool timestamps)
{
    log_close();
    log_levels = levels;
    log_to_stderr = to_stderr;
    log_to_stdout = to_stdout;
    log_file = file;
    log_timestamps = timestamps;
}

void
log_close(void)
{
    if (log_file)
        fclose(log_file);
    log_file = NULL;
}

bool
log_enabled(enum log_level level)
{
    return (log_levels & level) != 0;
}

static const char *
level_name(enum log_level level)
{
    switch (level) {
    case LOG_ERROR: return "error";
    case LOG_WARN: return "warn";
    case LOG_NOTICE: return "notice";
    case LOG_INFO: return "info";
    case LOG_DEBUG: return "debug";
    }
    return "?";
}

void
log_write(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    size_t n = 0;
    va_list ap;

    if (!log_enabled(level))
        return;
    if (log_timestamps) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "%s ", level_name(level));
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (log_to_stderr && write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report a failing log */
    }
    if (log_to_stdout && write(STDOUT_FILENO, line, n) < 0) {
    }
    if (log_file) {
        fwrite(line, 1, n, log_file);
        fflush(log_file);
    }
}

bool
log_ratelimit(struct log_ratelimit *state, unsigned per_sec)
{
    long now = (long)time(NULL);
    long seen = atomic_load_explicit(&state->window, memory_order_relaxed);

    /* Shared by worker threads; an approximate count is good enough for log noise. */
    if (seen != now &&
        atomic_compare_exchange_strong_explicit(&state->window, &seen, now, memory_order_relaxed,
                                                memory_order_relaxed))
        atomic_store_explicit(&state->count, 0, memory_order_relaxed);
    return atomic_fetch_add_explicit(&state->count, 1, memory_order_relaxed) < per_sec;
}

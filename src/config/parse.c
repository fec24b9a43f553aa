/*
 * parse.c - reads configuration files into "key rest-of-line" pairs for keys.c, and formats
 * the loader's messages.
 *
 * The format is Mosquitto's: one "key value..." per line. A line whose first non-blank
 * character is '#' is a comment; a '#' later in a line is data, as in Mosquitto. Blank lines
 * are skipped and blanks at both ends of a line are dropped, so CRLF files read like LF files.
 * A file is read whole, so lines may be of any length; a NUL byte in a line is an error
 * rather than a silent truncation. Every message starts with "FILE:LINE: " (or "FILE: " when
 * the whole file is at fault).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "config/internal.h"

/* Configuration files are small; this only stops a mistaken path (a log, a device) from
 * being read into memory. */
#define CONFIG_MAX_FILE (16u << 20)

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void
vformat(const struct config_parse *p, char *out, size_t out_len, const char *fmt, va_list ap)
{
    int n;

    if (p->line > 0)
        n = snprintf(out, out_len, "%s:%d: ", p->file, p->line);
    else
        n = snprintf(out, out_len, "%s: ", p->file);
    if (n < 0 || (size_t)n >= out_len)
        return;
    vsnprintf(out + n, out_len - (size_t)n, fmt, ap);
}

int
config_parse_error(struct config_parse *p, const char *fmt, ...)
{
    va_list ap;

    if (!p->err || p->err_len == 0)
        return -1;
    va_start(ap, fmt);
    vformat(p, p->err, p->err_len, fmt, ap);
    va_end(ap);
    return -1;
}

void
config_parse_warn(struct config_parse *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!p->warn_fn)
        return;
    va_start(ap, fmt);
    vformat(p, msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->warn_fn(msg);
}

const char *
config_clip(const char *s, size_t len, char *buf, size_t buf_len)
{
    size_t max = buf_len >= 64 ? 60 : buf_len - 4;
    size_t i;

    /* Values reach a terminal: control bytes are shown as '?'. */
    for (i = 0; i < len && i < max; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (i < len) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* Apply every line of one file's text. */
static int
parse_text(struct config_parse *p, const char *data, size_t len)
{
    char *line = NULL;
    size_t line_cap = 0;
    size_t pos = 0;
    int rc = 0;

    /* A UTF-8 byte order mark, as some Windows editors write, is not part of the first key. */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;

        pos += n + (nl ? 1 : 0);
        p->line++;
        if (memchr(s, '\0', n)) {
            rc = config_parse_error(p, "line contains a NUL byte");
            break;
        }
        while (n > 0 && is_blank(s[n - 1]))
            n--;
        while (n > 0 && is_blank(s[0])) {
            s++;
            n--;
        }
        if (n == 0 || s[0] == '#')
            continue;
        if (n + 1 > line_cap) {
            line_cap = n + 1;
            line = xrealloc(line, line_cap);
        }
        memcpy(line, s, n);
        line[n] = '\0';

        char *rest = line;
        while (*rest && !is_blank(*rest))
            rest++;
        if (*rest) {
            *rest++ = '\0';
            while (is_blank(*rest))
                rest++;
        }
        if ((rc = config_keys_apply(p, line, rest)) != 0)
            break;
    }
    free(line);
    return rc;
}

/* Read all of `path` into `out`. Returns 0 or -1 with p->err set. */
static int
read_file(struct config_parse *p, const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return config_parse_error(p, "cannot open: %s", strerror(errno));
    for (;;) {
        if (out->len >= CONFIG_MAX_FILE) {
            close(fd);
            return config_parse_error(p, "larger than %u MiB; not a configuration file?",
                                      CONFIG_MAX_FILE >> 20);
        }
        if (buf_reserve(out, 64 * 1024) != 0) {
            close(fd);
            return config_parse_error(p, "cannot read: %s", strerror(ENOMEM));
        }
        ssize_t n = read(fd, out->p + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return config_parse_error(p, "cannot read: %s", strerror(e));
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    close(fd);
    return 0;
}

int
config_parse_file(struct config_parse *p, const char *path)
{
    /* Listener and bridge sections end with their file, as in Mosquitto. */
    const char *saved_file = p->file;
    int saved_line = p->line;
    bool saved_in_listener = p->in_listener;
    size_t saved_cur = p->cur;
    bool saved_in_bridge = p->in_bridge;
    struct buf text;
    int rc;

    p->file = path;
    p->line = 0;
    p->in_listener = false;
    p->cur = 0;
    p->in_bridge = false;

    buf_init(&text);
    rc = read_file(p, path, &text);
    if (rc == 0)
        rc = parse_text(p, (const char *)text.p, text.len);
    buf_fini(&text);

    p->file = saved_file;
    p->line = saved_line;
    p->in_listener = saved_in_listener;
    p->cur = saved_cur;
    p->in_bridge = saved_in_bridge;
    return rc;
}

static void
parse_init(struct config_parse *p, struct config *c, char *err, size_t err_len,
           void (*warn_fn)(const char *msg))
{
    memset(p, 0, sizeof(*p));
    p->c = c;
    p->err = err;
    p->err_len = err_len;
    p->warn_fn = warn_fn;
    p->deflt.port = 1883;
    p->deflt.protocol = LISTENER_MQTT;
    p->deflt.max_connections = -1;
    p->deflt.socket_domain = LISTENER_DOMAIN_ANY;
    if (err && err_len > 0)
        err[0] = '\0';
}

static void
parse_fini(struct config_parse *p)
{
    /* Only set when the load failed before the default listener was handed to c. */
    config_listener_fini(&p->deflt);
}

int
config_load(const char *path, struct config *c, char *err, size_t err_len,
            void (*warn_fn)(const char *msg))
{
    struct config_parse p;
    int rc;

    parse_init(&p, c, err, err_len, warn_fn);
    rc = config_parse_file(&p, path);
    if (rc == 0)
        rc = config_listeners_finish(&p);
    parse_fini(&p);
    return rc;
}

int
config_load_buffer(const char *name, const char *data, size_t len, struct config *c,
                   char *err, size_t err_len, void (*warn_fn)(const char *msg))
{
    struct config_parse p;
    int rc;

    parse_init(&p, c, err, err_len, warn_fn);
    p.file = name;
    rc = parse_text(&p, data, len);
    if (rc == 0)
        rc = config_listeners_finish(&p);
    parse_fini(&p);
    return rc;
}

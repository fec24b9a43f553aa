/*
 * passwd.c - `petrel passwd [-c] [-b] [-D] FILE USER [PASSWORD]`, like mosquitto_passwd.
 *
 *   -c  create FILE (replacing any file there) with USER as its only entry
 *   -b  batch: PASSWORD is on the command line (else it is asked for twice on a terminal, or
 *       read as one line from standard input when that is not a terminal)
 *   -D  delete USER
 *
 * Entries are written in Mosquitto's "$7$" form (PBKDF2-SHA512, 101 iterations, 12-byte salt),
 * so the file works with both brokers. Other lines of the file are kept as they are. The new
 * file replaces the old one by rename(), with the old file's permissions (0600 when new), so a
 * reader never sees half a file.
 */
#include "cli/passwd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "base/xalloc.h"

#define PASSWORD_MAX 65535

static void
usage(FILE *out)
{
    fprintf(out, "usage: petrel passwd [-c] [-b] [-D] FILE USER [PASSWORD]\n"
                 "  -c  create FILE (replacing it) with USER as its only entry\n"
                 "  -b  take PASSWORD from the command line\n"
                 "  -D  delete USER from FILE\n"
                 "Without -b the password is asked for on the terminal, or read as one line\n"
                 "from standard input.\n");
}

/* One line of input without its line end; echo off on a terminal. Returns 0 or -1. */
static int
read_line(const char *prompt, bool tty, char *out, size_t out_len)
{
    struct termios old, quiet;

    if (tty) {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(out, (int)out_len, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got)
        return -1;
    size_t len = strlen(out);
    if (len == out_len - 1 && out[len - 1] != '\n')
        return -1; /* longer than a password can be */
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return 0;
}

static int
ask_password(char *out, size_t out_len)
{
    bool tty = isatty(STDIN_FILENO);
    char again[PASSWORD_MAX + 2];
    int rc = 0;

    if (read_line("Password: ", tty, out, out_len) != 0) {
        fprintf(stderr, "petrel passwd: no password given\n");
        return -1;
    }
    if (tty) {
        if (read_line("Reenter password: ", tty, again, sizeof(again)) != 0 ||
            strcmp(out, again) != 0) {
            fprintf(stderr, "petrel passwd: passwords do not match\n");
            rc = -1;
        }
        OPENSSL_cleanse(again, sizeof(again));
    }
    return rc;
}

static bool
user_valid(const char *user)
{
    size_t len = strlen(user);

    if (len == 0 || len > 65535 || strchr(user, ':'))
        return false;
    for (const char *p = user; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* Is `line` the entry of `user` (the name before ':', without surrounding blanks)? */
static bool
is_entry_of(const char *line, const char *user)
{
    if (line[0] == '#')
        return false;
    const char *colon = strchr(line, ':');
    if (!colon)
        return false;
    const char *b = line, *e = colon;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (size_t)(e - b) == strlen(user) && memcmp(b, user, (size_t)(e - b)) == 0;
}

/* Write `text` to `path` through a temporary file and rename(). Returns 0 or -1. */
static int
replace_file(const char *path, const char *text, size_t len, mode_t mode)
{
    size_t n = strlen(path) + 16;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "petrel passwd: cannot create a file next to %s: %s\n", path,
                strerror(errno));
        free(tmp);
        return -1;
    }
    bool ok = fchmod(fd, mode) == 0;
    for (size_t off = 0; ok && off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += w > 0 ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "petrel passwd: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* The file with USER's entry set to `entry` (NULL: removed). *found tells whether it was
 * there. Returns the new text (malloc'd) or NULL when the file cannot be read. */
static char *
edit(const char *path, const char *user, const char *entry, bool *found, mode_t *mode)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    char *line = NULL, *out = NULL;
    size_t cap = 0, out_len = 0;
    ssize_t n;

    if (!f) {
        fprintf(stderr, "petrel passwd: cannot open %s: %s%s\n", path, strerror(errno),
                errno == ENOENT ? " (use -c to create it)" : "");
        return NULL;
    }
    *mode = fstat(fileno(f), &st) == 0 ? st.st_mode & 07777 : 0600;
    *found = false;
    FILE *mem = open_memstream(&out, &out_len);
    if (!mem) {
        fprintf(stderr, "petrel passwd: out of memory\n");
        fclose(f);
        return NULL;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        if (!is_entry_of(line, user)) {
            fputs(line, mem);
            if (line[n - 1] != '\n')
                fputc('\n', mem);
            continue;
        }
        /* The first entry of the user is replaced (or removed); repeats are dropped. */
        if (!*found && entry)
            fprintf(mem, "%s:%s\n", user, entry);
        *found = true;
    }
    if (!*found && entry)
        fprintf(mem, "%s:%s\n", user, entry);
    fclose(mem);
    if (line)
        OPENSSL_cleanse(line, cap);
    free(line);
    fclose(f);
    return out;
}

int
cli_passwd(int argc, char **argv)
{
    bool create = false, batch = false, del = false;
    int opt;

    optind = 1;
    while ((opt = getopt(argc, argv, "+cbDh")) != -1) {
        switch (opt) {
        case 'c':
            create = true;
            break;
        case 'b':
            batch = true;
            break;
        case 'D':
            del = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    int want = 2 + (batch ? 1 : 0);
    if (argc - optind != want || (create && del) || (del && batch)) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind], *user = argv[optind + 1];
    if (!user_valid(user)) {
        fprintf(stderr, "petrel passwd: a username must not be empty or hold ':' or control "
                        "characters\n");
        return 1;
    }

    char password[PASSWORD_MAX + 2], entry[AUTH_HASH_MAX];
    if (!del) {
        if (batch) {
            if (strlen(argv[optind + 2]) > PASSWORD_MAX) {
                fprintf(stderr, "petrel passwd: the password is longer than 65535 bytes\n");
                return 1;
            }
            snprintf(password, sizeof(password), "%s", argv[optind + 2]);
        } else if (ask_password(password, sizeof(password)) != 0) {
            return 1;
        }
        int rc = auth_passwd_hash(slice_cstr(password), entry, sizeof(entry));
        OPENSSL_cleanse(password, sizeof(password));
        if (rc != 0) {
            fprintf(stderr, "petrel passwd: cannot hash the password\n");
            return 1;
        }
    }

    char *text;
    mode_t mode = 0600;
    bool found = false;
    if (create) {
        size_t n = strlen(user) + strlen(entry) + 3;
        text = xmalloc(n);
        snprintf(text, n, "%s:%s\n", user, entry);
    } else if (!(text = edit(path, user, del ? NULL : entry, &found, &mode))) {
        return 1;
    }
    if (del && !found) {
        fprintf(stderr, "petrel passwd: user %s is not in %s\n", user, path);
        free(text);
        return 1;
    }
    int rc = replace_file(path, text, strlen(text), mode);
    free(text);
    return rc == 0 ? 0 : 1;
}

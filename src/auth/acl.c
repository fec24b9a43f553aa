/*
 * acl.c - Mosquitto ACL files, and what they let one client do.
 *
 *   topic [read|write|readwrite|deny] TOPIC     a rule of the current section
 *   user NAME                                   starts NAME's section
 *   pattern [read|write|readwrite|deny] TOPIC   a rule for everyone; %c client ID, %u username
 *   p2p same-group | p2p target GLOB            Petrel: whom the current section may address
 *   p2p_pattern same-group | p2p_pattern target GLOB   the same for everyone
 *
 * Lines before any `user` line form the anonymous section (clients without a username).
 * Checking a topic follows Mosquitto: the client's own section first, then the patterns; in
 * each, deny rules are tried before the others and the first rule that matches and decides
 * wins; nothing matching means denied. A pattern expanding a username or client ID holding
 * '+' or '#' is never used (it could widen the rule).
 *
 * A client's view (acl_compile) holds its section's rules and the patterns already expanded,
 * so checks do no allocation and no string building.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "base/xalloc.h"
#include "mqtt/topic.h"

/* ---- parsing ---- */

struct acl_parse {
    const char *name;
    int line;
    char *err;
    size_t err_len;
};

static int __attribute__((format(printf, 2, 3)))
parse_error(struct acl_parse *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->err_len, "%s:%d: %s", p->name, p->line, msg);
    return -1;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Split the first word off *rest; *rest then points past the blanks after it. */
static char *
next_word(char **rest)
{
    char *w = *rest, *p = w;

    while (*p && !is_blank(*p))
        p++;
    if (*p) {
        *p++ = '\0';
        while (is_blank(*p))
            p++;
    }
    *rest = p;
    return w;
}

static void
section_add_rule(struct acl_section *s, uint8_t access, const char *topic)
{
    s->rules = xrealloc(s->rules, (s->n_rules + 1) * sizeof(*s->rules));
    /* Deny rules go before the others, keeping file order within each kind. */
    size_t at = access == ACL_DENY ? s->n_denies++ : s->n_rules;
    memmove(&s->rules[at + 1], &s->rules[at], (s->n_rules - at) * sizeof(*s->rules));
    s->rules[at] = (struct acl_rule){access, xstrdup(topic)};
    s->n_rules++;
}

static int
parse_topic_line(struct acl_parse *p, struct acl_section *s, const char *key, char *rest)
{
    char *word = next_word(&rest);
    const char *topic = rest;
    uint8_t access;

    if (!*word)
        return parse_error(p, "%s: missing topic", key);
    if (!*rest) {
        /* "topic TOPIC": read and write, as in Mosquitto. */
        topic = word;
        access = ACL_READ | ACL_WRITE;
    } else if (strcmp(word, "read") == 0) {
        access = ACL_READ;
    } else if (strcmp(word, "write") == 0) {
        access = ACL_WRITE;
    } else if (strcmp(word, "readwrite") == 0) {
        access = ACL_READ | ACL_WRITE;
    } else if (strcmp(word, "deny") == 0) {
        access = ACL_DENY;
    } else {
        return parse_error(p, "%s: '%s' is not read, write, readwrite or deny", key, word);
    }
    if (!mqtt_topic_filter_valid(slice_cstr(topic)))
        return parse_error(p, "%s: '%s' is not a valid topic filter", key, topic);
    section_add_rule(s, access, topic);
    return 0;
}

static int
parse_p2p_line(struct acl_parse *p, struct acl_section *s, const char *key, char *rest)
{
    char *word = next_word(&rest);
    struct acl_p2p_rule r = {0};

    if (strcmp(word, "same-group") == 0 && !*rest) {
        r.same_group = true;
    } else if (strcmp(word, "target") == 0 && *rest) {
        r.pattern = xstrdup(rest);
    } else {
        return parse_error(p, "%s: expected 'same-group' or 'target PATTERN'", key);
    }
    s->p2p = xrealloc(s->p2p, (s->n_p2p + 1) * sizeof(*s->p2p));
    s->p2p[s->n_p2p++] = r;
    return 0;
}

static int
parse_line(struct acl_parse *p, struct acl *acl, struct acl_section **cur, char *line)
{
    char *rest = line;
    char *key = next_word(&rest);

    if (strcmp(key, "topic") == 0)
        return parse_topic_line(p, *cur, key, rest);
    if (strcmp(key, "pattern") == 0)
        return parse_topic_line(p, &acl->patterns, key, rest);
    if (strcmp(key, "p2p") == 0)
        return parse_p2p_line(p, *cur, key, rest);
    if (strcmp(key, "p2p_pattern") == 0)
        return parse_p2p_line(p, &acl->patterns, key, rest);
    if (strcmp(key, "user") == 0) {
        if (!*rest)
            return parse_error(p, "user: missing username");
        struct acl_section *s = map_get(&acl->users, slice_cstr(rest));
        if (!s) {
            s = xcalloc(1, sizeof(*s));
            s->user = xstrdup(rest);
            map_put(&acl->users, slice_cstr(s->user), s);
        }
        *cur = s;
        return 0;
    }
    return parse_error(p, "'%s' is not topic, pattern, user, p2p or p2p_pattern", key);
}

int
acl_parse(const char *name, const char *data, size_t len, struct acl *acl, char *err,
          size_t err_len)
{
    struct acl_parse p = {.name = name, .err = err, .err_len = err_len};
    struct acl_section *cur = &acl->anon;
    const char *pos = data, *end = data + len;

    memset(acl, 0, sizeof(*acl));
    map_init(&acl->users);
    while (pos < end) {
        const char *nl = memchr(pos, '\n', (size_t)(end - pos));
        size_t n = nl ? (size_t)(nl - pos) : (size_t)(end - pos);
        char *copy = xstrndup(pos, n), *line = copy;
        pos += n + (nl != NULL);
        p.line++;
        while (is_blank(*line))
            line++;
        size_t l = strlen(line);
        while (l > 0 && is_blank(line[l - 1]))
            line[--l] = '\0';
        int rc = (*line && *line != '#') ? parse_line(&p, acl, &cur, line) : 0;
        free(copy);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int
acl_load(const char *path, struct acl *acl, char *err, size_t err_len)
{
    char *data;
    size_t len;

    if (auth_read_file(path, &data, &len, err, err_len) != 0) {
        memset(acl, 0, sizeof(*acl));
        map_init(&acl->users);
        return -1;
    }
    int rc = acl_parse(path, data, len, acl, err, err_len);
    free(data);
    return rc;
}

static void
section_fini(struct acl_section *s)
{
    for (size_t i = 0; i < s->n_rules; i++)
        free(s->rules[i].topic);
    for (size_t i = 0; i < s->n_p2p; i++)
        free(s->p2p[i].pattern);
    free(s->rules);
    free(s->p2p);
    free(s->user);
}

void
acl_fini(struct acl *acl)
{
    size_t pos = 0;
    struct acl_section *s;

    while ((s = map_next(&acl->users, &pos)) != NULL) {
        section_fini(s);
        free(s);
    }
    map_fini(&acl->users);
    section_fini(&acl->anon);
    section_fini(&acl->patterns);
    memset(acl, 0, sizeof(*acl));
}

/* ---- one client's view ---- */

struct expand_ctx {
    const char *user;
    struct slice client_id;
    struct slice group;
};

/* Expand %c, %u and %g in `tpl` into dst (NULL: only measure). Returns the length, or -1
 * when the template needs a value the client does not have. */
static long
expand(const char *tpl, const struct expand_ctx *x, char *dst)
{
    size_t n = 0;

    for (const char *t = tpl; *t; t++) {
        struct slice v = {NULL, 0};
        bool subst = t[0] == '%' && (t[1] == 'c' || t[1] == 'u' || t[1] == 'g');
        if (subst) {
            if (t[1] == 'c')
                v = x->client_id;
            else if (t[1] == 'u' && x->user)
                v = slice_cstr(x->user);
            else if (t[1] == 'g' && x->group.len)
                v = x->group;
            else
                return -1;
            t++;
        } else {
            v = slice_make(t, 1);
        }
        if (dst && v.len)
            memcpy(dst + n, v.p, v.len);
        n += v.len;
    }
    return (long)n;
}

static bool
has_wildcard(struct slice s)
{
    return memchr(s.p, '+', s.len) || memchr(s.p, '#', s.len);
}

void
acl_compile(const struct acl *acl, const char *user, struct slice client_id, struct slice group,
            struct acl_view *out)
{
    const struct acl_section *sec = user ? map_get(&acl->users, slice_cstr(user)) : &acl->anon;
    const struct acl_section *pat = &acl->patterns;
    struct expand_ctx x = {user, client_id, group};
    /* Mosquitto's rule: a username or client ID with wildcards never expands a pattern. */
    bool patterns_ok = !(user && has_wildcard(slice_cstr(user))) && !has_wildcard(client_id);
    size_t arena = 0, n_entries = sec ? sec->n_rules : 0, n_targets = sec ? sec->n_p2p : 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; patterns_ok && i < pat->n_rules; i++) {
        long n = expand(pat->rules[i].topic, &x, NULL);
        if (n > 0) {
            arena += (size_t)n;
            n_entries++;
        }
    }
    for (size_t i = 0; i < pat->n_p2p; i++) {
        long n = pat->p2p[i].same_group ? 0 : expand(pat->p2p[i].pattern, &x, NULL);
        arena += n > 0 ? (size_t)n : 0;
        n_targets++;
    }
    out->entries = n_entries ? xcalloc(n_entries, sizeof(*out->entries)) : NULL;
    out->targets = n_targets ? xcalloc(n_targets, sizeof(*out->targets)) : NULL;
    out->arena = arena ? xmalloc(arena) : NULL;
    out->p2p_restricted = n_targets > 0;

    size_t used = 0;
    for (size_t i = 0; sec && i < sec->n_rules; i++)
        out->entries[out->n_entries++] =
            (struct acl_entry){sec->rules[i].access, slice_cstr(sec->rules[i].topic)};
    for (size_t i = 0; patterns_ok && i < pat->n_rules; i++) {
        long n = expand(pat->rules[i].topic, &x, NULL);
        if (n <= 0)
            continue;
        expand(pat->rules[i].topic, &x, out->arena + used);
        struct slice f = slice_make(out->arena + used, (size_t)n);
        used += (size_t)n;
        /* A client ID or username with '/' in odd places can still give a valid filter;
         * anything else would not match sensibly and is left out. */
        if (mqtt_topic_filter_valid(f))
            out->entries[out->n_entries++] = (struct acl_entry){pat->rules[i].access, f};
    }
    for (size_t i = 0; sec && i < sec->n_p2p; i++)
        out->targets[out->n_targets++] = (struct acl_target){
            sec->p2p[i].same_group,
            sec->p2p[i].same_group ? slice_make(NULL, 0) : slice_cstr(sec->p2p[i].pattern)};
    for (size_t i = 0; i < pat->n_p2p; i++) {
        if (pat->p2p[i].same_group) {
            out->targets[out->n_targets++] = (struct acl_target){true, {NULL, 0}};
            continue;
        }
        long n = patterns_ok ? expand(pat->p2p[i].pattern, &x, NULL) : -1;
        if (n <= 0)
            continue; /* still restricted: this rule just allows nobody */
        expand(pat->p2p[i].pattern, &x, out->arena + used);
        out->targets[out->n_targets++] =
            (struct acl_target){false, slice_make(out->arena + used, (size_t)n)};
        used += (size_t)n;
    }
}

void
acl_view_fini(struct acl_view *v)
{
    free(v->entries);
    free(v->targets);
    free(v->arena);
    memset(v, 0, sizeof(*v));
}

/* ---- checks ---- */

enum acl_result
acl_check_topic(const struct acl_view *v, unsigned access, struct slice topic)
{
    for (size_t i = 0; i < v->n_entries; i++) {
        const struct acl_entry *e = &v->entries[i];
        if (!mqtt_topic_match(e->filter, topic))
            continue;
        if (e->access == ACL_DENY)
            return ACL_DENIED;
        if (e->access & access)
            return ACL_ALLOW;
    }
    return ACL_NO_MATCH;
}

bool
acl_check_filter(const struct acl_view *v, struct slice filter)
{
    for (size_t i = 0; i < v->n_entries; i++) {
        const struct acl_entry *e = &v->entries[i];
        if (e->access == ACL_DENY) {
            if (acl_filter_covers(e->filter, filter))
                return false;
        } else if ((e->access & ACL_READ) && acl_filter_intersects(e->filter, filter)) {
            return true;
        }
    }
    return false;
}

bool
acl_check_target(const struct acl_view *v, struct slice group, struct slice target)
{
    if (!v->p2p_restricted)
        return true;
    for (size_t i = 0; i < v->n_targets; i++) {
        const struct acl_target *t = &v->targets[i];
        if (t->same_group) {
            if (group.len && target.len > group.len + 3 && slice_has_prefix(target, group) &&
                memcmp(target.p + group.len, "@@@", 3) == 0)
                return true;
        } else if (acl_glob_match(t->pattern, target)) {
            return true;
        }
    }
    return false;
}

/* ---- filter algebra ---- */

/* The levels of a topic or filter, one at a time. */
struct levels {
    struct slice s;
    size_t pos;
    bool done;
};

static bool
level_next(struct levels *it, struct slice *out)
{
    if (it->done)
        return false;
    const uint8_t *p = it->s.p + it->pos;
    size_t left = it->s.len - it->pos;
    const uint8_t *slash = left ? memchr(p, '/', left) : NULL;
    if (slash) {
        *out = slice_make(p, (size_t)(slash - p));
        it->pos += (size_t)(slash - p) + 1;
    } else {
        *out = slice_make(p, left);
        it->done = true;
    }
    return true;
}

static bool
is_hash(struct slice l)
{
    return l.len == 1 && l.p[0] == '#';
}

static bool
is_plus(struct slice l)
{
    return l.len == 1 && l.p[0] == '+';
}

static bool
is_dollar(struct slice l)
{
    return l.len > 0 && l.p[0] == '$';
}

bool
acl_filter_covers(struct slice rule, struct slice filter)
{
    struct levels r = {rule, 0, false}, f = {filter, 0, false};
    struct slice rl = {0}, fl = {0};

    for (bool first = true;; first = false) {
        bool hr = level_next(&r, &rl), hf = level_next(&f, &fl);
        if (hr && is_hash(rl))
            /* '#' takes every remaining level, but at the first level no '$' topic
             * [MQTT-4.7.2-1]. */
            return !(first && hf && is_dollar(fl));
        if (!hr || !hf)
            return !hr && !hf;
        if (is_hash(fl))
            return false;
        if (is_plus(fl)) {
            if (!is_plus(rl))
                return false;
        } else if (is_plus(rl)) {
            if (first && is_dollar(fl))
                return false;
        } else if (!slice_eq(rl, fl)) {
            return false;
        }
    }
}

bool
acl_filter_intersects(struct slice a, struct slice b)
{
    struct levels x = {a, 0, false}, y = {b, 0, false};
    struct slice xl = {0}, yl = {0};

    for (bool first = true;; first = false) {
        bool hx = level_next(&x, &xl), hy = level_next(&y, &yl);
        if (first && hx && hy &&
            (((is_plus(xl) || is_hash(xl)) && is_dollar(yl)) ||
             ((is_plus(yl) || is_hash(yl)) && is_dollar(xl))))
            return false; /* wildcards never reach '$' topics [MQTT-4.7.2-1] */
        if ((hx && is_hash(xl)) || (hy && is_hash(yl)))
            return true;
        if (!hx || !hy)
            return !hx && !hy;
        if (!is_plus(xl) && !is_plus(yl) && !slice_eq(xl, yl))
            return false;
    }
}

bool
acl_glob_match(struct slice pat, struct slice s)
{
    size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;

    while (i < s.len) {
        if (p < pat.len && pat.p[p] == '*') {
            star = p++;
            mark = i;
        } else if (p < pat.len && pat.p[p] == s.p[i]) {
            p++;
            i++;
        } else if (star != SIZE_MAX) {
            p = star + 1;
            i = ++mark;
        } else {
            return false;
        }
    }
    while (p < pat.len && pat.p[p] == '*')
        p++;
    return p == pat.len;
}

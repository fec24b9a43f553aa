/*
 * fuzz_acl.c - libFuzzer target for Mosquitto ACL files and the checks built on them
 * (auth/acl.c).
 *
 * The input is an ACL file, then, each after a NUL byte: a username (empty: anonymous), a
 * client ID, a topic, a filter and a P2P target. The file must parse, or fail with a message
 * naming the file and line; the parsed rules must be valid filters with the deny rules first.
 * The view compiled for that user and client ID is then asked about the topic, the filter and
 * the target, and the filter helpers are held to what mqtt_topic_match says: a filter that
 * covers another matches every topic the other matches, and two filters matching one topic
 * intersect.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "base/log.h"
#include "mqtt/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static struct slice
field(const uint8_t *data, size_t size, size_t *pos)
{
    size_t start = *pos;
    const uint8_t *nul = start < size ? memchr(data + start, 0, size - start) : NULL;
    size_t end = nul ? (size_t)(nul - data) : size;

    *pos = nul ? end + 1 : size;
    return slice_make(data + start, end - start);
}

static void
check_section(const struct acl_section *s)
{
    CHECK(s->n_denies <= s->n_rules);
    for (size_t i = 0; i < s->n_rules; i++) {
        const struct acl_rule *r = &s->rules[i];
        CHECK(r->topic && r->topic[0]);
        CHECK((i < s->n_denies) == (r->access == ACL_DENY));
        CHECK((r->access & ~(ACL_READ | ACL_WRITE)) == 0);
    }
    for (size_t i = 0; i < s->n_p2p; i++)
        CHECK(s->p2p[i].same_group || s->p2p[i].pattern);
}

static bool
plain_filter(struct slice f)
{
    struct slice group, inner;

    return f.len > 0 && mqtt_topic_filter_valid(f) && mqtt_shared_split(f, &group, &inner) == 0;
}

/* The filter helpers against mqtt_topic_match, on two filters and one topic. */
static void
check_filters(struct slice a, struct slice b, struct slice topic)
{
    if (!plain_filter(a) || !plain_filter(b))
        return;
    CHECK(acl_filter_covers(a, a));
    CHECK(acl_filter_intersects(a, b) == acl_filter_intersects(b, a));
    if (!mqtt_topic_name_valid(topic))
        return;
    bool ma = mqtt_topic_match(a, topic), mb = mqtt_topic_match(b, topic);
    if (mb && acl_filter_covers(a, b))
        CHECK(ma);
    if (ma && acl_filter_covers(b, a))
        CHECK(mb);
    if (ma && mb)
        CHECK(acl_filter_intersects(a, b));
}

static void
check_view(const struct acl *acl, struct slice user, struct slice client_id, struct slice topic,
           struct slice filter, struct slice target)
{
    struct acl_view v;
    struct slice group = {NULL, 0};
    char *name = user.len ? strndup((const char *)user.p, user.len) : NULL;

    if (!apsara_gid_parse(client_id, &group))
        group = slice_make(NULL, 0);
    acl_compile(acl, name, client_id, group, &v);
    for (size_t i = 0; i < v.n_entries; i++) {
        CHECK(mqtt_topic_filter_valid(v.entries[i].filter));
        check_filters(v.entries[i].filter, filter, topic);
    }
    if (mqtt_topic_name_valid(topic)) {
        for (unsigned access = ACL_READ; access <= ACL_WRITE; access <<= 1) {
            enum acl_result r = acl_check_topic(&v, access, topic);
            CHECK(r == ACL_NO_MATCH || r == ACL_ALLOW || r == ACL_DENIED);
            CHECK(v.n_entries > 0 || r == ACL_NO_MATCH);
        }
    }
    if (plain_filter(filter))
        (void)acl_check_filter(&v, filter);
    bool ok = acl_check_target(&v, group, target);
    CHECK(v.p2p_restricted || ok);
    acl_view_fini(&v);
    free(name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    struct slice file = field(data, size, &pos);
    struct slice user = field(data, size, &pos);
    struct slice client_id = field(data, size, &pos);
    struct slice topic = field(data, size, &pos);
    struct slice filter = field(data, size, &pos);
    struct slice target = field(data, size, &pos);
    struct acl acl;
    char err[256];

    err[0] = '\0';
    int rc = acl_parse("fuzz.acl", (const char *)file.p, file.len, &acl, err, sizeof(err));
    CHECK(rc == 0 || (rc == -1 && strncmp(err, "fuzz.acl:", 9) == 0));
    if (rc == 0) {
        check_section(&acl.anon);
        check_section(&acl.patterns);
        size_t it = 0;
        struct acl_section *s;
        while ((s = map_next(&acl.users, &it)) != NULL) {
            CHECK(s->user && s->user[0]);
            check_section(s);
        }
        check_view(&acl, user, client_id, topic, filter, target);
    }
    acl_fini(&acl);
    check_filters(filter, topic, target);
    return 0;
}

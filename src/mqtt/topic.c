/*
 * topic.c - topic names and topic filters: validation and matching [MQTT-4.7].
 *
 * A topic is a sequence of levels separated by '/'. Levels may be empty: "a//b" has three
 * levels, "/a" and "a/" two each, "/" two empty ones. In a filter, '+' is a whole level and
 * matches exactly one level (possibly empty); '#' is the whole last level and matches the
 * parent level and any number of levels below it [MQTT-4.7.1-2, MQTT-4.7.1-3].
 *
 * Nothing here allocates; everything works on borrowed slices. UTF-8 well-formedness is the
 * decoder's job [MQTT-1.5.4-1]; the NUL check is repeated here because the HTTP API also hands
 * us topics [MQTT-4.7.3-2].
 */
#include "mqtt/topic.h"

#include <stddef.h>
#include <string.h>

/* The longest UTF-8 string MQTT can carry [MQTT-4.7.3-3]. */
#define TOPIC_MAX_LEN 65535u

bool
mqtt_topic_name_valid(struct slice topic)
{
    if (topic.len == 0 || topic.len > TOPIC_MAX_LEN) /* [MQTT-4.7.3-1] */
        return false;
    for (size_t i = 0; i < topic.len; i++) {
        uint8_t c = topic.p[i];
        /* Wildcards are for filters only [MQTT-4.7.1-1, MQTT-3.3.2-2]. */
        if (c == '+' || c == '#' || c == '\0')
            return false;
    }
    return true;
}

bool
mqtt_topic_filter_valid(struct slice filter)
{
    if (filter.len == 0 || filter.len > TOPIC_MAX_LEN) /* [MQTT-4.7.3-1] */
        return false;
    for (size_t i = 0; i < filter.len; i++) {
        uint8_t c = filter.p[i];
        bool at_level_start = i == 0 || filter.p[i - 1] == '/';
        bool at_level_end = i + 1 == filter.len || filter.p[i + 1] == '/';
        if (c == '\0') /* [MQTT-4.7.3-2] */
            return false;
        if (c == '+' && !(at_level_start && at_level_end)) /* [MQTT-4.7.1-3] */
            return false;
        if (c == '#' && !(at_level_start && i + 1 == filter.len)) /* [MQTT-4.7.1-2] */
            return false;
    }
    return true;
}

int
mqtt_shared_split(struct slice filter, struct slice *group, struct slice *inner)
{
    static const struct slice prefix = SLICE("$share/");

    if (!slice_has_prefix(filter, prefix))
        return 0;
    struct slice rest = slice_tail(filter, prefix.len);
    const uint8_t *slash = rest.len ? memchr(rest.p, '/', rest.len) : NULL;
    if (!slash) /* the ShareName must be followed by '/' and a filter [MQTT-4.8.2-2] */
        return -1;
    size_t group_len = (size_t)(slash - rest.p);
    if (group_len == 0) /* at least one character [MQTT-4.8.2-1] */
        return -1;
    for (size_t i = 0; i < group_len; i++) {
        if (rest.p[i] == '+' || rest.p[i] == '#' || rest.p[i] == '\0') /* [MQTT-4.8.2-2] */
            return -1;
    }
    struct slice in = slice_tail(rest, group_len + 1);
    if (!mqtt_topic_filter_valid(in))
        return -1;
    *group = slice_make(rest.p, group_len);
    *inner = in;
    return 1;
}

/* The end of the level starting at `from`: the index of the next '/', or s.len. */
static size_t
level_end(struct slice s, size_t from)
{
    const uint8_t *slash = from < s.len ? memchr(s.p + from, '/', s.len - from) : NULL;
    return slash ? (size_t)(slash - s.p) : s.len;
}

bool
mqtt_topic_match(struct slice filter, struct slice topic)
{
    /* A filter starting with a wildcard does not see '$' topics [MQTT-4.7.2-1]. */
    if (topic.len > 0 && topic.p[0] == '$' && filter.len > 0 &&
        (filter.p[0] == '+' || filter.p[0] == '#'))
        return false;

    size_t f = 0, t = 0; /* start of the current level in each */
    for (;;) {
        size_t fe = level_end(filter, f), te = level_end(topic, t);
        struct slice fl = slice_make(filter.p + f, fe - f);
        struct slice tl = slice_make(topic.p + t, te - t);

        if (slice_eq(fl, SLICE("#")))
            return true;
        if (!slice_eq(fl, SLICE("+")) && !slice_eq(fl, tl))
            return false;
        bool filter_done = fe == filter.len, topic_done = te == topic.len;
        if (filter_done || topic_done) {
            if (filter_done && topic_done)
                return true;
            /* "sport/#" also matches "sport": only a last level of '#' may be left over
             * [MQTT-4.7.1-2]. A filter that ends first never matches a longer topic. */
            return topic_done && filter.len - fe == 2 && filter.p[fe + 1] == '#';
        }
        f = fe + 1;
        t = te + 1;
    }
}

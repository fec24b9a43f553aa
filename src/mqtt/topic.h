/*
 * topic.h - topic names and topic filters: validation and matching [MQTT-4.7].
 */
#ifndef PETREL_MQTT_TOPIC_H
#define PETREL_MQTT_TOPIC_H

#include <stdbool.h>

#include "base/slice.h"

/* A topic name for PUBLISH: 1 to 65535 bytes, no '+' or '#' [MQTT-4.7.3-1, MQTT-4.7.3-3,
 * MQTT-3.3.2-2], no NUL [MQTT-4.7.3-2]. UTF-8 well-formedness is checked elsewhere. Levels may
 * be empty: "a//b", "/a" and "/" are valid. */
bool mqtt_topic_name_valid(struct slice topic);

/* A topic filter: 1 to 65535 bytes, no NUL; '#' only alone or last after a '/' [MQTT-4.7.1-2];
 * '+' occupies a whole level [MQTT-4.7.1-3]. It says nothing about "$share/": call
 * mqtt_shared_split() first (on MQTT 5), which checks shared filters whole. */
bool mqtt_topic_filter_valid(struct slice filter);

/* Split "$share/<group>/<filter>". Returns 1 when `filter` is a valid shared subscription and
 * fills group and inner (slices into `filter`); 0 when it does not start with "$share/" (group
 * and inner untouched); -1 when it does but is invalid: empty group name, or one holding '+',
 * '#' or NUL, or no '/' after it [MQTT-4.8.2-1, MQTT-4.8.2-2], or an inner filter that fails
 * mqtt_topic_filter_valid(). */
int mqtt_shared_split(struct slice filter, struct slice *group, struct slice *inner);

/* Does `filter` match `topic`? Wildcards at the first level do not match topics that start
 * with '$' [MQTT-4.7.2-1]; "a/#" matches "a" [MQTT-4.7.1-2]; '+' matches one level, empty or
 * not. Bytes compare exactly, with no normalisation [MQTT-4.7.3-4]. Both are assumed valid and
 * not shared (pass the inner filter of a "$share/" one). */
bool mqtt_topic_match(struct slice filter, struct slice topic);

#endif

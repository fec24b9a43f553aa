/*
 * fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Any bytes, loaded over the defaults, must end in 0 or in -1 with a message naming the
 * file, and leave a struct that config_fini frees: no crash, leak or undefined behaviour.
 * Inputs go through config_load_buffer, so no temporary file is written; an include_dir line
 * still reads from disk, which only ever finds *.conf files there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_warning(const char *msg)
{
    /* Every warning names where it comes from. */
    if (strchr(msg, ':') == NULL)
        abort();
}

static void
check_config(const struct config *c)
{
    if (c->maximum_qos > 2 || c->max_inflight_messages > 65535 || c->sys_interval > 65535)
        abort();
    if (c->max_packet_size != 0 && (c->max_packet_size < 20 || c->max_packet_size > 268435460))
        abort();
    if (c->persistent_client_expiration == 0 || c->persistent_client_expiration < -1)
        abort();
    if (!c->p2p_keyword || !c->p2p_keyword[0] || strpbrk(c->p2p_keyword, "/+#"))
        abort();
    for (size_t i = 0; i < c->n_p2p_parents; i++) {
        const char *p = c->p2p_parents[i];
        if (!p[0] || p[0] == '$' || strpbrk(p, "/+#"))
            abort();
    }
    for (size_t i = 0; i < c->n_listeners; i++) {
        const struct config_listener *li = &c->listeners[i];
        if (!li->file || li->max_connections < -1)
            abort();
        if (li->bind_address && (!li->bind_address[0] || li->bind_address[0] == '/'))
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    char err[256];

    config_defaults(&c);
    err[0] = '\0';
    int rc = config_load_buffer("fuzz.conf", (const char *)data, size, &c, err, sizeof(err),
                                check_warning);
    if (rc == 0)
        check_config(&c);
    else if (rc != -1 || strchr(err, ':') == NULL)
        abort();
    config_fini(&c);
    return 0;
}

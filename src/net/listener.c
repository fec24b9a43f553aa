/*
 * listener.c - listening sockets; see listener.h.
 */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"

struct listener {
    struct loop_watch watch;
    struct loop *loop;
    listener_accept_fn *fn;
    void *ud;
    void *data;
    uint16_t port;
};

void
listener_format_addr(const void *sockaddr, char *out, size_t out_len)
{
    const struct sockaddr *sa = sockaddr;
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = sockaddr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, out_len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = sockaddr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, out_len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, out_len, "unix");
    }
}

static void
on_accept(void *ud, uint32_t events)
{
    struct listener *li = ud;

    /* Accept a bounded batch so one listener cannot starve established connections. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(li->watch.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                static struct log_ratelimit rl;
                if (log_ratelimit(&rl, 1))
                    log_warn("accept failed port=%u error=%s", li->port, strerror(errno));
            }
            return;
        }
        char peer[64];
        listener_format_addr(&ss, peer, sizeof(peer));
        li->fn(li->ud, li, fd, peer);
    }
}

int
listener_new(struct loop *loop, const char *addr, uint16_t port, bool reuseport,
             listener_accept_fn *fn, void *ud, struct listener **out, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    int fd = -1, rc;

    snprintf(portstr, sizeof(portstr), "%u", port);
    if (!addr)
        hints.ai_family = AF_INET6; /* dual-stack wildcard */
    if ((rc = getaddrinfo(addr, portstr, &hints, &res)) != 0) {
        snprintf(err, err_len, "cannot resolve %s: %s", addr ? addr : "*", gai_strerror(rc));
        return -EINVAL;
    }
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (ai->ai_family == AF_INET6 && !addr)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
            rc = 0;
            break;
        }
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (rc != 0) {
        snprintf(err, err_len, "cannot listen on %s:%u: %s", addr ? addr : "*", port,
                 strerror(-rc));
        return rc;
    }

    struct listener *li = xcalloc(1, sizeof(*li));
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    li->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    li->watch = (struct loop_watch){fd, on_accept, li};
    li->loop = loop;
    li->fn = fn;
    li->ud = ud;
    if ((rc = loop_add(loop, &li->watch, EPOLLIN)) != 0) {
        snprintf(err, err_len, "cannot watch listener: %s", strerror(-rc));
        close(fd);
        free(li);
        return rc;
    }
    *out = li;
    return 0;
}

void
listener_free(struct listener *li)
{
    if (!li)
        return;
    loop_del(li->loop, &li->watch);
    close(li->watch.fd);
    free(li);
}

uint16_t
listener_port(const struct listener *li)
{
    return li->port;
}

void
listener_set_data(struct listener *li, void *data)
{
    li->data = data;
}

void *
listener_data(const struct listener *li)
{
    return li->data;
}

/*
 * conn.h - one client connection: a non-blocking socket with an input buffer and an output
 * buffer. Bytes only; the protocol lives above (session/).
 *
 * Output is appended to conn_out() and flushed once per loop iteration (conn_pool_after), so a
 * burst of small packets costs one write. Closing is deferred the same way: conn_close() marks
 * the connection, and the pool finishes the close after the iteration, calling on_close exactly
 * once. Until then the struct stays valid, so callers never free a connection inside its own
 * callback.
 */
#ifndef PETREL_NET_CONN_H
#define PETREL_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/list.h"
#include "net/loop.h"
#include "net/transport.h"

struct conn;

struct conn_ops {
    /* New bytes are in conn_in(c); consume what forms whole packets (buf_consume). */
    void (*on_input)(void *ud, struct conn *c);
    /* The connection is closing; after this returns, `c` is freed. `ud` must detach. */
    void (*on_close)(void *ud, struct conn *c);
};

/* All connections of one worker, with the lists of those needing a flush or a close. */
struct conn_pool {
    struct loop *loop;
    struct list all;
    struct list dirty;
    struct list closing;
    size_t n_conns;
    bool nodelay;
    uint64_t bytes_in;
    uint64_t bytes_out;
    struct buf spare;    /* the read buffer, between reads of connections that consumed all */
};

void conn_pool_init(struct conn_pool *p, struct loop *loop, bool nodelay);
/* Close every connection now (shutdown). */
void conn_pool_fini(struct conn_pool *p);
/* Give back the empty output buffers of all connections: idle ones then hold no buffer at
 * all, and busy ones re-grow theirs at most once per call. For a periodic timer. */
void conn_pool_trim(struct conn_pool *p);
/* Flush dirty connections and finish pending closes; the loop's after-iteration hook. */
void conn_pool_after(void *pool);

/* Take ownership of an accepted socket `fd` and of `t` (NULL: plain TCP). `peer` is copied
 * ("1.2.3.4:5678"). Returns NULL (fd closed, t freed) when the loop refuses it. */
struct conn *conn_new(struct conn_pool *p, int fd, struct transport *t, const char *peer,
                      const struct conn_ops *ops, void *ud);
/* The socket's file descriptor and transport (for a hand-off after conn_release, which leaves
 * both to the caller). */
int conn_fd(const struct conn *c);
struct transport *conn_transport(const struct conn *c);
void conn_set_handler(struct conn *c, const struct conn_ops *ops, void *ud);

struct buf *conn_in(struct conn *c);
/* Input that arrived another way (read by the worker that handed the connection over): append
 * it and handle it as if just read. Returns 0 or -ENOMEM. */
int conn_push_input(struct conn *c, const void *p, size_t len);
/* Append output here, then call conn_wrote(). */
struct buf *conn_out(struct conn *c);
void conn_wrote(struct conn *c);
/* Append `len` bytes at `p` to the output without copying them: they are written from where
 * they are, and release(arg) is called once they have left (or the connection is gone). With a
 * transport that must see contiguous bytes (TLS, WebSocket) they are copied at once instead.
 * Returns 0, or -ENOMEM (then release has been called). */
int conn_write_ref(struct conn *c, const void *p, size_t len, void (*release)(void *), void *arg);
/* Hold the output back (true) until released (false): what is appended meanwhile waits, and
 * a close while held discards it. The durable store uses it so that no acknowledgement leaves
 * before the state it acknowledges has committed. */
void conn_hold(struct conn *c, bool hold);
/* Bytes waiting to be written. */
size_t conn_out_pending(const struct conn *c);
/* Whether output waits because the socket refused it at the last flush (not because it is
 * held), and how many bytes the peer has acknowledged so far (one ioctl): together they tell
 * a peer that reads nothing from one that reads slowly. */
bool conn_is_blocked(const struct conn *c);
uint64_t conn_bytes_acked(const struct conn *c);

/* Close after flushing what is already in the output buffer (best effort, one write). */
void conn_close(struct conn *c);
/* Close once everything written so far has left, however long that takes (a last HTTP answer
 * larger than the socket takes at once); input is still delivered meanwhile. */
void conn_close_flushed(struct conn *c);
/* Give the socket away (to another worker): it leaves this loop at once; after the iteration
 * the connection is freed like a closed one, but the fd stays open and nothing more is written
 * to it. */
void conn_release(struct conn *c);
bool conn_is_closing(const struct conn *c);
const char *conn_peer(const struct conn *c);

#endif

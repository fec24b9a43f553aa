/*
 * tls.h - TLS (OpenSSL 3) as a connection transport: one factory per TLS listener, one
 * transport per accepted socket.
 *
 * The handshake runs inside the transport's read and write calls without ever blocking: a
 * client that sends nothing, or stops half way, only holds its own connection (which the
 * session layer's CONNECT timeout closes). The transport reads and writes the fd it is given,
 * so another transport (WebSocket) can sit on top of it.
 */
#ifndef PETREL_NET_TLS_H
#define PETREL_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/transport.h"

/* Mosquitto's listener keys. Strings are copied by tls_factory_new. */
struct tls_settings {
    const char *certfile;      /* PEM certificate chain; required */
    const char *keyfile;       /* PEM private key; required */
    const char *cafile;        /* CAs that sign client certificates */
    const char *capath;        /* a c_rehash'ed directory of such CAs */
    const char *crlfile;       /* PEM revocation list checked for client certificates */
    const char *tls_version;   /* lowest version: "tlsv1.2" (default) or "tlsv1.3" */
    const char *ciphers;       /* TLS 1.2 cipher list (OpenSSL syntax) */
    const char *ciphers_tls13; /* TLS 1.3 cipher suites */
    bool require_certificate;  /* clients must present a certificate the CAs verify */
};

/* Build a factory: loads and checks every file now. Returns 0, or -1 with a message in err
 * (naming the key and the OpenSSL reason). */
int tls_factory_new(const struct tls_settings *s, struct transport_factory **out, char *err,
                    size_t err_len);

/* Read the certificate, key, CA and CRL files again (SIGHUP). New connections use them;
 * established ones keep what they negotiated. On failure the old ones stay in force and -1 is
 * returned with err set. Safe while worker threads create transports. */
int tls_factory_reload(struct transport_factory *f, char *err, size_t err_len);

/* The common name of the client certificate verified during the handshake, or NULL (none, the
 * handshake is not done, or `t` is not a TLS transport). Valid while `t` lives. */
const char *tls_peer_identity(const struct transport *t);

/* Is `t` a TLS transport (as opposed to a transport built on something else)? */
bool tls_is_transport(const struct transport *t);

#endif

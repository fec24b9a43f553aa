/*
 * hash.h - hashing of byte strings.
 *
 * Two kinds, for two needs:
 *   hash_fixed  the same value in every process (FNV-1a with a final mix): for choices that
 *               must be stable or computable outside the broker, such as which worker owns a
 *               client ID (the tests compute it too). Not for tables whose keys clients pick.
 *   hash_keyed  SipHash-1-3 under a secret key: for hash tables whose keys come from clients
 *               (client IDs, topic levels), so nobody can pick keys that pile into one bucket.
 */
#ifndef PETREL_BASE_HASH_H
#define PETREL_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_fixed(const void *p, size_t len);

uint64_t hash_keyed(const uint64_t key[2], const void *p, size_t len);

/* Fill key with random bytes from the kernel; falls back on a mix of addresses and the clock
 * when none can be had (never fails). */
void hash_key_random(uint64_t key[2]);

#endif

#ifndef SB_ORGCACHE_H
#define SB_ORGCACHE_H

#include "route.h"

#include <stddef.h>
#include <stdint.h>

/* A short-lived cache of routing facts, keyed by (phone number id, metadata organization,
 * assistant id): a batch of a busy organization's calls needs one look-up, not one per
 * message. Entries expire after ORGCACHE_TTL_MS, so a phone number or assistant added to
 * the database (or one removed) is seen within seconds. */
#define ORGCACHE_TTL_MS 5000

struct orgcache; /* opaque */

/* Returns a new cache of `slots` entries (free with orgcache_free()), or NULL. */
struct orgcache *orgcache_new(size_t slots);

/* Frees c (NULL-safe). */
void orgcache_free(struct orgcache *c);

/* Copies the facts cached for the key into *f (new strings: release with
 * orgcache_facts_free()) and returns 1; 0 when absent or expired. Any key part may be NULL. */
int orgcache_get(struct orgcache *c, const char *phone, const char *meta, const char *assistant,
                 int64_t now_ms, struct route_facts *f);

/* Caches f (copied) for the key until now_ms + ORGCACHE_TTL_MS. */
void orgcache_put(struct orgcache *c, const char *phone, const char *meta, const char *assistant,
                  const struct route_facts *f, int64_t now_ms);

/* Frees the strings orgcache_get() copied into f. */
void orgcache_facts_free(struct route_facts *f);

#endif

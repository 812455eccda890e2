#ifndef SB_SHARDS_H
#define SB_SHARDS_H

#include "cfg.h"

#include <stddef.h>

/* The streams the webhooks are spread over: SWITCHBOARD_SHARDS of them. One shard is today's
 * single stream, named SWITCHBOARD_STREAM; with more shards, or under REDIS_CLUSTER, shard i
 * is SWITCHBOARD_STREAM:{i} and its dead letters SWITCHBOARD_DEAD_STREAM:{i}. The hash tag {i}
 * puts a shard's stream, dead letters and the keys beside them (stream.h) in one cluster slot,
 * so that the MULTI acknowledging a batch stays on one node, and spreads the shards over the
 * cluster's masters. Every ingest and worker of a deployment must agree on the count. */

#define SHARDS_NAME 300 /* room for a shard's names */

/* Whether c names its shards with hash tags. */
int shards_tagged(const struct cfg *c);

/* The stream of shard i (0 ≤ i < c->shards) into out. */
void shards_stream(const struct cfg *c, int i, char *out, size_t size);

/* The dead-letter stream of shard i into out. */
void shards_dead(const struct cfg *c, int i, char *out, size_t size);

#endif

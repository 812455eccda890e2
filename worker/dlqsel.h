#ifndef SB_DLQSEL_H
#define SB_DLQSEL_H

#include "consumer.h"

#include <stdint.h>

/* Dead letters: reading their fields, and choosing them by id or by filters. */

/* The --help lines of the filter options. */
#define DLQ_FILTER_HELP                                                                            \
	"  --reason TEXT   only those whose reason contains TEXT (any case)\n"                     \
	"  --since TIME    only those dead-lettered at or after TIME (ISO-8601 or epoch ms)\n"     \
	"  --until TIME    only those dead-lettered at or before TIME\n"

/* Which dead letters a command applies to. */
struct dlq_filter {
	const char *reason; /* substring of the reason, case-insensitive; NULL: any */
	int64_t since_ms;   /* dead-lettered at or after (ms since the epoch); 0: from the first */
	int64_t until_ms;   /* at or before; 0: up to the moment the command started */
	long long limit;    /* at most this many; 0: no limit */
};

/* Reads filter options into f: --reason, --since, --until (TIME), --limit (N > 0). The
 * strings are the options' values or NULL. Returns 0, or -1 after printing what is wrong. */
int dlq_filter_parse(const char *cmd, const char *reason, const char *since, const char *until,
                     const char *limit, struct dlq_filter *f) __attribute__((warn_unused_result));

/* Called for each dead letter chosen (an [id, fields] element, borrowed); a non-zero return
 * stops the walk with that value. */
typedef int (*dlq_visit)(struct consumer *c, const redisReply *entry, void *arg);

/* Walks the dead letters f selects, shard by shard and oldest first in each, a page at a
 * time, with the shard visited selected (c->sh). The end is fixed when the walk starts, so
 * that entries dead-lettered meanwhile (a redrive that fails again) are not visited. Returns
 * 0, the visitor's non-zero value, or -1 when Redis failed. */
int dlq_each(struct consumer *c, const struct dlq_filter *f, dlq_visit visit, void *arg);

/* The dead letter with this id, looked for in every shard: a new XRANGE reply whose
 * element[0] is it (free with freeReplyObject()), its shard then selected; or NULL when there
 * is none (*redis_failed says whether Redis failed). */
redisReply *dlq_get(struct consumer *c, const char *id, int *redis_failed);

/* A field of an [id, fields] element, or NULL / "" when absent. */
const redisReply *dlq_field(const redisReply *entry, const char *name);
const char *dlq_field_str(const redisReply *entry, const char *name);

/* The body of a dead letter as received (decoded when stored compressed): 0 with *body,
 * *len and *owned (free it; NULL when the body is borrowed from entry), or -1 with why. */
int dlq_body(const redisReply *entry, const char **body, size_t *len, char **owned, char *why,
             size_t whylen) __attribute__((warn_unused_result));

/* message.call.id of a dead letter's body into buf, or "-" when it has none readable. */
const char *dlq_call_id(const redisReply *entry, char *buf, size_t size);

#endif

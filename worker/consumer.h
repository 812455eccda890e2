#ifndef SB_CONSUMER_H
#define SB_CONSUMER_H

#include "cfg.h"
#include "redisconn.h"
#include "shards.h"
#include "sink.h"
#include "wmetrics.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* One stream shard as a worker sees it (shards.h): its names and its own connection, to the
 * master of its slot under a cluster. */
struct consumer_shard {
	char stream[SHARDS_NAME]; /* the shard's stream */
	char dead[SHARDS_NAME];   /* its dead letters */
	redisContext *redis;      /* NULL while disconnected */
	int read_pending;         /* read our own pending entries (id 0) before new ones */
	int group_seen;           /* the group existed before: a re-creation is reported */
	unsigned attempts;        /* connects failed in a row (the run command's backoff) */
	int64_t retry_at;         /* monotonic ms before which it is not tried again */
};

/* One worker's connections and the batch pipeline every reading command shares:
 * entries → decode and parse → route and write in one transaction → dead letters and XACK in
 * one MULTI. Every Redis call works on the selected shard, c->sh (consumer_select()); the
 * commands that span the stream visit each shard in turn. */
struct consumer {
	const struct cfg *cfg;         /* borrowed */
	struct redis_addr addr;        /* parsed REDIS_URL */
	struct consumer_shard *shards; /* SWITCHBOARD_SHARDS of them */
	int nshards;
	struct consumer_shard *sh;   /* the selected one */
	int rr;                      /* the shard the next round starts with */
	struct sink *sink;           /* NULL while disconnected */
	volatile sig_atomic_t *stop; /* set by signals: finish the batch in hand, then return */
	long long give_up_ms;        /* an operator command's --timeout: how long one connect
	                                keeps retrying; 0 (run): until stopped */
	int failed;                  /* a connect gave up or hit a setting error: why says so */
	char why[640];               /* one line: the setting or server, and libpq's or
	                                hiredis' own text */
};

/* What process() did with a batch. */
struct batch_result {
	size_t filed, unrouted, dead; /* outcomes of the entries */
	size_t skipped;               /* left out by the filter */
	bool written;                 /* committed (false: stopped during an outage) */
	bool acked;                   /* dead letters and XACK done */
};

/* Prepares c for cfg. Returns 0, or -1 (logged) when REDIS_URL cannot be parsed. */
int consumer_init(struct consumer *c, const struct cfg *cfg, volatile sig_atomic_t *stop)
    __attribute__((warn_unused_result));

/* Closes every connection and frees the shards. */
void consumer_close(struct consumer *c);

/* Makes shard i (0 ≤ i < c->nshards) the one Redis calls work on. */
void consumer_select(struct consumer *c, int i);

/* Connects the selected shard to Redis (and makes sure the group exists) / to PostgreSQL, retrying
 * with capped exponential backoff and jitter until connected (0) or asked to stop (-1). Also -1,
 * with c->failed set and c->why saying why, when the setting itself is wrong (a database that does
 * not exist, a wrong password: logged as an error naming REDIS_URL or DATABASE_URL, never
 * retried) or when c->give_up_ms passed without a connection. */
int consumer_redis_up(struct consumer *c);
int consumer_pg_up(struct consumer *c);

/* Connects every shard as consumer_redis_up() does, one after the other (operator
 * commands). Returns 0, or -1 as it does. */
int consumer_redis_up_all(struct consumer *c);

/* Drops a failed Redis context; entries read but not acked are read again afterwards. */
void consumer_redis_drop(struct consumer *c);

/* Decides whether a parsed item is written (replay's filters); may set it->skip. */
typedef void (*consumer_filter)(struct consumer *c, struct sink_item *it, void *arg);

/* Processes entries (an array reply of [id, fields] elements). deliveries[i] is how often
 * entry i was delivered, or NULL when all were delivered once. With ack, dead letters are
 * written and the batch XACKed after COMMIT; without (replay), malformed entries are only
 * counted and nothing is acknowledged. filter (may be NULL) sees each parsed item first. */
void consumer_process(struct consumer *c, const redisReply *entries, const long long *deliveries,
                      bool ack, consumer_filter filter, void *arg, struct batch_result *res);

/* Processes entries that may have been delivered before (our pending list, or claimed),
 * dead-lettering those delivered more than WORKER_MAX_DELIVERIES times. */
void consumer_process_redelivered(struct consumer *c, const redisReply *entries);

/* Reads and processes one batch from the group on the selected shard, waiting up to block_ms
 * for one (0: not at all); returns the entries read (0: none), or -1 when Redis failed. */
int consumer_step(struct consumer *c, long long block_ms);

/* Reads and processes one batch from every connected shard, starting with the one after
 * the last round's first; when none had entries, waits for a while on one of them (all of
 * WORKER_BLOCK_MS with one shard). Returns the entries read, or -1 when every shard's Redis
 * failed. */
long long consumer_round(struct consumer *c);

/* Looks up how often each of the n entries was delivered (XPENDING over their range for
 * this consumer) into out[0..n). Returns 0, or -1 when Redis failed. */
int consumer_deliveries(struct consumer *c, const redisReply *entries, long long *out);

/* The run command: consume until *stop; periodic claim, trim and re-route. Returns the exit
 * code. */
int consumer_run(const struct cfg *cfg, volatile sig_atomic_t *stop);

#endif

/* Batch loop: XREADGROUP → parse → route and write in one transaction → dead letters and
 * XACK in one MULTI. */
#include "consumer.h"

#include "log.h"
#include "redisconn.h"
#include "sink.h"
#include "stream.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a serialization failure or deadlock is retried before the batch is split. */
#define CONSUMER_TXN_RETRIES 5

struct consumer {
	const struct cfg *cfg;
	struct redis_addr addr;
	redisContext *redis;
	struct sink *sink;
	volatile sig_atomic_t *stop;
	int read_pending; /* read our own pending entries (id 0) before new ones (>) */
	int group_seen;   /* the group existed or was created by us before */
};

static void redis_drop(struct consumer *c)
{
	redisFree(c->redis);
	c->redis = NULL;
	/* Whatever we had read but not acked is still pending for us: read it again first. */
	c->read_pending = 1;
}

/* Connects to Redis and makes sure the group exists, retrying with backoff. Returns 0, or
 * -1 when asked to stop. */
static int redis_up(struct consumer *c)
{
	char err[256];

	for (unsigned attempt = 0; !*c->stop; attempt++) {
		int created = -1;

		if (c->redis == NULL)
			c->redis = redisconn_open(&c->addr, (int)c->cfg->redis_timeout_ms, err,
						  sizeof(err));
		if (c->redis != NULL)
			created = stream_ensure_group(c->redis, c->cfg->stream, c->cfg->group, err,
						      sizeof(err));
		if (created >= 0) {
			if (created && c->group_seen)
				log_error("consumer group %s on %s had vanished (Redis lost its data?); "
					  "re-created it: entries written meanwhile are read from the "
					  "stream's start",
					  c->cfg->group, c->cfg->stream);
			if (attempt > 0)
				log_info("redis: connected again after %u attempts", attempt);
			c->group_seen = 1;
			return 0;
		}
		if (c->redis != NULL)
			redis_drop(c);
		log_warn("redis: %s; retrying", err);
		util_sleep_ms(util_backoff_ms(attempt, UTIL_BACKOFF_BASE_MS, UTIL_BACKOFF_CAP_MS),
			      (volatile int *)c->stop);
	}
	return -1;
}

/* Connects to PostgreSQL, retrying with backoff. Returns 0, or -1 when asked to stop. */
static int pg_up(struct consumer *c)
{
	char err[512];

	for (unsigned attempt = 0; c->sink == NULL; attempt++) {
		if (*c->stop)
			return -1;
		c->sink = sink_open(c->cfg->database_url, err, sizeof(err));
		if (c->sink != NULL) {
			if (attempt > 0)
				log_info("postgres: connected again after %u attempts", attempt);
			return 0;
		}
		log_warn("postgres: %s; retrying", err);
		util_sleep_ms(util_backoff_ms(attempt, UTIL_BACKOFF_BASE_MS, UTIL_BACKOFF_CAP_MS),
			      (volatile int *)c->stop);
	}
	return 0;
}

/* Turns entry i of the reply into an item: decoded body and parsed message, or dead with
 * the reason. */
static void item_prepare(const redisReply *r, struct sink_item *it)
{
	char why[256];

	memset(it, 0, sizeof(*it));
	if (stream_entry_parse(r, &it->entry) != 0) {
		it->dead = true;
		snprintf(it->reason, sizeof(it->reason), "malformed stream entry");
		return;
	}
	if (stream_entry_body(&it->entry, &it->body, &it->body_len, why, sizeof(why)) != 0) {
		it->dead = true;
		snprintf(it->reason, sizeof(it->reason), "%s", why);
		return;
	}
	if (vapi_msg_parse(it->body, it->body_len, &it->msg, why, sizeof(why)) != 0) {
		it->dead = true;
		snprintf(it->reason, sizeof(it->reason), "%s", why);
	}
}

/* Orders a batch by call id, then stream id, so that concurrent workers lock rows in the
 * same order and cannot deadlock. */
static int item_cmp(const void *a, const void *b)
{
	const struct sink_item *x = *(struct sink_item *const *)a;
	const struct sink_item *y = *(struct sink_item *const *)b;
	const char *cx = x->dead ? NULL : x->msg.call_id, *cy = y->dead ? NULL : y->msg.call_id;
	int d = strcmp(cx ? cx : "", cy ? cy : "");
	long long ix, iy, sx, sy;

	if (d != 0)
		return d;
	/* Stream ids compare numerically: "ms-seq". */
	sscanf(x->entry.id, "%lld-%lld", &ix, &sx);
	sscanf(y->entry.id, "%lld-%lld", &iy, &sy);
	return ix != iy ? (ix < iy ? -1 : 1) : (sx < sy ? -1 : sx > sy);
}

/* Writes items[0..n) with retries. Returns 0 when committed; -1 with rc_out set otherwise. */
static int write_once(struct consumer *c, struct sink_item **items, size_t n,
		      enum sink_status *rc_out, char *err, size_t errlen)
{
	for (unsigned attempt = 0;; attempt++) {
		enum sink_status rc;

		if (pg_up(c) != 0) {
			*rc_out = SINK_CONN;
			return -1;
		}
		rc = sink_write(c->sink, items, n, err, errlen);
		if (rc == SINK_OK)
			return 0;
		if (rc == SINK_CONN) {
			log_warn("postgres: %s; reconnecting", err);
			sink_close(c->sink);
			c->sink = NULL;
			util_sleep_ms(util_backoff_ms(attempt, UTIL_BACKOFF_BASE_MS,
						      UTIL_BACKOFF_CAP_MS),
				      (volatile int *)c->stop);
			continue;
		}
		if (rc == SINK_RETRY && attempt < CONSUMER_TXN_RETRIES) {
			util_sleep_ms(util_backoff_ms(attempt, 10, 1000), NULL);
			continue;
		}
		*rc_out = rc;
		return -1;
	}
}

/* Writes the batch; when it fails through one message's fault, writes each message in its
 * own transaction so that only the bad ones are dead-lettered. Returns 0 when every item is
 * either committed or marked dead; -1 when asked to stop with the batch unwritten. */
static int write_batch(struct consumer *c, struct sink_item **items, size_t n)
{
	char err[512];
	enum sink_status rc;

	if (write_once(c, items, n, &rc, err, sizeof(err)) == 0)
		return 0;
	if (rc == SINK_CONN)
		return -1;
	log_warn("batch of %zu failed (%s); writing its messages one by one", n, err);
	for (size_t i = 0; i < n; i++) {
		if (items[i]->dead)
			continue;
		if (write_once(c, &items[i], 1, &rc, err, sizeof(err)) == 0)
			continue;
		if (rc == SINK_CONN)
			return -1;
		items[i]->dead = true;
		snprintf(items[i]->reason, sizeof(items[i]->reason), "%s", err);
	}
	return 0;
}

/* Appends XADD of one dead letter to the pipeline. */
static void append_dead(struct consumer *c, const struct sink_item *it, const char *now)
{
	char recv[24];
	const char *argv[20];
	size_t lens[20];
	int n = 0;

#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s) ARG((s), strlen(s))
	ARGS("XADD");
	ARGS(c->cfg->dead_stream);
	ARGS("*");
	ARGS("reason");
	ARGS(it->reason);
	ARGS("original_id");
	ARGS(it->entry.id);
	ARGS("dead_at");
	ARGS(now);
	ARGS("consumer");
	ARGS(c->cfg->consumer);
	if (it->entry.body != NULL) {
		ARGS(STREAM_F_BODY);
		ARG(it->entry.body, it->entry.body_len);
	}
	snprintf(recv, sizeof(recv), "%lld", (long long)it->entry.received_at);
	ARGS(STREAM_F_RECEIVED_AT);
	ARGS(recv);
	if (it->entry.request_id != NULL) {
		ARGS(STREAM_F_REQUEST_ID);
		ARGS(it->entry.request_id);
	}
	if (it->entry.enc != NULL) {
		ARGS(STREAM_F_ENC);
		ARGS(it->entry.enc);
	}
#undef ARG
#undef ARGS
	redisAppendCommandArgv(c->redis, n, argv, lens);
}

/* Dead letters and the XACK of the whole batch in one MULTI/EXEC, so that an entry is never
 * acked without its dead letter nor dead-lettered twice. Returns 0, or -1 when Redis failed
 * (the entries stay pending and are read again). */
static int ack_batch(struct consumer *c, struct sink_item *items, size_t n)
{
	const char **argv = calloc(n + 3, sizeof(*argv));
	char now[24];
	size_t queued = 2;
	int rc = 0;

	if (argv == NULL)
		return -1;
	snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
	redisAppendCommand(c->redis, "MULTI");
	for (size_t i = 0; i < n; i++) {
		if (items[i].dead) {
			log_msg(LOGL_ERROR, "stream_id", items[i].entry.id, "dead-lettered: %s",
				items[i].reason);
			append_dead(c, &items[i], now);
			queued++;
		}
	}
	argv[0] = "XACK";
	argv[1] = c->cfg->stream;
	argv[2] = c->cfg->group;
	for (size_t i = 0; i < n; i++)
		argv[3 + i] = items[i].entry.id;
	redisAppendCommandArgv(c->redis, (int)(n + 3), argv, NULL);
	redisAppendCommand(c->redis, "EXEC");
	for (size_t i = 0; i < queued + 1; i++) {
		redisReply *r = NULL;

		if (redisGetReply(c->redis, (void **)&r) != REDIS_OK) {
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_ERROR || (i == queued && r->type != REDIS_REPLY_ARRAY)) {
			log_error("ack: %s", r->type == REDIS_REPLY_ERROR ? r->str : "EXEC aborted");
			rc = -1;
		}
		freeReplyObject(r);
	}
	free(argv);
	if (rc != 0 && c->redis->err)
		redis_drop(c);
	return rc;
}

static void process(struct consumer *c, const redisReply *entries)
{
	size_t n = entries->elements;
	struct sink_item *items = calloc(n, sizeof(*items));
	struct sink_item **order = calloc(n, sizeof(*order));
	size_t parked = 0, dead = 0;

	if (items == NULL || order == NULL) {
		log_error("out of memory for a batch of %zu", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		item_prepare(entries->element[i], &items[i]);
		order[i] = &items[i];
	}
	qsort(order, n, sizeof(*order), item_cmp);
	if (write_batch(c, order, n) != 0)
		goto out; /* stopping during an outage: nothing acked, all stays pending */
	for (size_t i = 0; i < n; i++) {
		parked += items[i].unrouted;
		dead += items[i].dead;
		if (items[i].unrouted)
			log_msg(LOGL_WARN, "stream_id", items[i].entry.id, "unrouted: %s",
				items[i].reason);
	}
	if (ack_batch(c, items, n) == 0)
		log_debug("batch of %zu committed (%zu unrouted, %zu dead)", n, parked, dead);
out:
	for (size_t i = 0; items != NULL && i < n; i++)
		vapi_msg_free(&items[i].msg);
	free(order);
	free(items);
}

/* Reads one batch. Returns the reply (free it) or NULL when the connection failed. */
static redisReply *read_batch(struct consumer *c)
{
	char count[24], block[24];
	const char *argv[] = {"XREADGROUP", "GROUP", c->cfg->group, c->cfg->consumer, "COUNT",
			      count,        "BLOCK", block,         "STREAMS",        c->cfg->stream,
			      c->read_pending ? "0" : ">"};

	snprintf(count, sizeof(count), "%lld", c->cfg->batch);
	snprintf(block, sizeof(block), "%lld", c->read_pending ? 1LL : c->cfg->block_ms);
	return redisconn_cmdv(c->redis, 11, argv);
}

/* Handles one read: returns 0 to go on, -1 when the connection must be rebuilt. */
static int step(struct consumer *c)
{
	redisReply *r = read_batch(c);
	const redisReply *entries;

	if (r == NULL) {
		log_warn("redis: %s; reconnecting", c->redis->errstr);
		redis_drop(c);
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* NOGROUP or UNBLOCKED (stream deleted): reconnecting re-creates the group. */
		log_error("XREADGROUP: %s", r->str);
		freeReplyObject(r);
		redis_drop(c);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) { /* BLOCK timed out */
		freeReplyObject(r);
		return 0;
	}
	entries = r->element[0]->element[1];
	if (entries->elements == 0)
		c->read_pending = 0; /* our pending list is empty: go on with new entries */
	else
		process(c, entries);
	freeReplyObject(r);
	return 0;
}

int consumer_run(const struct cfg *cfg, volatile sig_atomic_t *stop)
{
	struct consumer c = {.cfg = cfg, .stop = stop, .read_pending = 1};
	char err[256];

	if (redisconn_parse_url(cfg->redis_url, &c.addr, err, sizeof(err)) != 0) {
		log_error("REDIS_URL: %s", err);
		return 1;
	}
	log_info("worker %s consuming %s as group %s, batches of %lld", cfg->consumer,
		 cfg->stream, cfg->group, cfg->batch);
	while (!*stop) {
		if (c.redis == NULL && redis_up(&c) != 0)
			break;
		if (pg_up(&c) != 0)
			break;
		step(&c);
	}
	redisFree(c.redis);
	sink_close(c.sink);
	log_info("worker %s stopped", cfg->consumer);
	return 0;
}

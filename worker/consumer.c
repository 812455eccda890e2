/* The batch pipeline: XREADGROUP → parse → route and write in one transaction → dead letters
 * and XACK in one MULTI. */
#include "consumer.h"

#include "log.h"
#include "maint.h"
#include "pgfail.h"
#include "stream.h"
#include "timefmt.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a serialization failure or deadlock is retried before the batch is split. */
#define CONSUMER_TXN_RETRIES 5
#define CONSUMER_TXN_BACKOFF_BASE_MS 10
#define CONSUMER_TXN_BACKOFF_CAP_MS 1000

int consumer_init(struct consumer *c, const struct cfg *cfg, volatile sig_atomic_t *stop)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->stop = stop;
	if (cfg_redis_addr(cfg, &c->addr, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	c->nshards = (int)cfg->shards;
	c->shards = calloc((size_t)c->nshards, sizeof(*c->shards));
	if (c->shards == NULL) {
		log_error("out of memory");
		return -1;
	}
	for (int i = 0; i < c->nshards; i++) {
		shards_stream(cfg, i, c->shards[i].stream, sizeof(c->shards[i].stream));
		shards_dead(cfg, i, c->shards[i].dead, sizeof(c->shards[i].dead));
		c->shards[i].read_pending = 1;
	}
	c->sh = &c->shards[0];
	return 0;
}

void consumer_close(struct consumer *c)
{
	for (int i = 0; i < c->nshards; i++)
		redisFree(c->shards[i].redis);
	free(c->shards);
	c->shards = c->sh = NULL;
	c->nshards = 0;
	sink_close(c->sink);
	c->sink = NULL;
	metric_set(&wmetrics[WM_REDIS_UP], 0);
	metric_set(&wmetrics[WM_PG_UP], 0);
}

void consumer_select(struct consumer *c, int i)
{
	c->sh = &c->shards[i];
}

/* switchboard_worker_redis_up (and so /readyz): 1 while every shard is connected. */
static void set_redis_up(const struct consumer *c)
{
	int up = 1;

	for (int i = 0; i < c->nshards; i++)
		up &= c->shards[i].redis != NULL;
	metric_set(&wmetrics[WM_REDIS_UP], up);
}

void consumer_redis_drop(struct consumer *c)
{
	redisFree(c->sh->redis);
	c->sh->redis = NULL;
	c->sh->read_pending = 1;
	metric_add(&wmetrics[WM_REDIS_ERRORS], 1);
	set_redis_up(c);
}

static void backoff(struct consumer *c, unsigned attempt)
{
	util_sleep_ms(util_backoff_ms(attempt, UTIL_BACKOFF_BASE_MS, UTIL_BACKOFF_CAP_MS),
	              (volatile int *)c->stop);
}

/* Drops the trailing blanks libpq's messages end with. */
static void trim_why(struct consumer *c)
{
	size_t n = strlen(c->why);

	while (n > 0 && (c->why[n - 1] == ' ' || c->why[n - 1] == '\n'))
		c->why[--n] = '\0';
}

/* Waits before the next connect attempt; returns -1 (c->why set) instead when that would
 * pass the give-up time (give_up_at 0: never). */
static int retry_wait(struct consumer *c, unsigned attempt, int64_t give_up_at, const char *server,
                      const char *err)
{
	int64_t delay = util_backoff_ms(attempt, UTIL_BACKOFF_BASE_MS, UTIL_BACKOFF_CAP_MS);
	int64_t now = util_mono_ms();
	char d[24];

	if (give_up_at != 0 && now >= give_up_at) {
		snprintf(c->why, sizeof(c->why), "%s unreachable for %s (--timeout): %s", server,
		         timefmt_duration_ms(c->give_up_ms, d, sizeof(d)), err);
		trim_why(c);
		c->failed = 1;
		return -1;
	}
	if (give_up_at != 0 && now + delay > give_up_at)
		delay = give_up_at - now;
	util_sleep_ms(delay, (volatile int *)c->stop);
	return 0;
}

/* Records a setting that cannot work; returns -1. The run command logs it; an operator
 * command prints c->why itself. */
static int setting_error(struct consumer *c, const char *setting, const char *err)
{
	snprintf(c->why, sizeof(c->why), "%s: %s", setting, err);
	trim_why(c);
	c->failed = 1;
	if (c->give_up_ms == 0)
		log_error("%s (fix the setting; not retried)", c->why);
	return -1;
}

/* A retry: a warning for the run command, a debug line for an operator command (which
 * prints one line of its own when it gives up). */
static void log_retry(const struct consumer *c, const char *server, const char *err)
{
	log_msg(c->give_up_ms > 0 ? LOGL_DEBUG : LOGL_WARN, NULL, NULL, "%s: %s; retrying", server,
	        err);
}

static int64_t give_up_at(const struct consumer *c)
{
	return c->give_up_ms > 0 ? util_mono_ms() + c->give_up_ms : 0;
}

/* Redis answers AUTH and SELECT errors for a password, user or db number that is wrong, and
 * NOAUTH to the first command when REDIS_URL has no password but the server wants one. */
static bool redis_setting_error(const char *err)
{
	return strncmp(err, "AUTH: ", 6) == 0 || strncmp(err, "SELECT: ", 8) == 0 ||
	       strstr(err, "NOAUTH") != NULL;
}

/* One connect of the selected shard (the group made sure of). Returns 0; -1 with the reason
 * in err (the shard left disconnected), or -2 when the setting itself is wrong (c->failed). */
static int redis_try(struct consumer *c, unsigned attempt, char *err, size_t errlen)
{
	struct consumer_shard *sh = c->sh;
	int created = -1;

	/* A blocking read waits up to block_ms for entries: the socket timeout must outlast
	 * it. */
	if (sh->redis == NULL)
		sh->redis = redisconn_open_key(&c->addr, sh->stream,
		                               (int)(c->cfg->redis_timeout_ms + c->cfg->block_ms),
		                               err, errlen);
	if (sh->redis != NULL)
		created = stream_ensure_group(sh->redis, sh->stream, c->cfg->group, err, errlen);
	if (created >= 0) {
		if (created && sh->group_seen)
			log_error("consumer group %s on %s had vanished (Redis lost its data?); "
			          "re-created it: entries written meanwhile are read from the "
			          "stream's start",
			          c->cfg->group, sh->stream);
		if (attempt > 0)
			log_info("redis: %s connected again after %u attempts", sh->stream,
			         attempt);
		sh->group_seen = 1;
		sh->attempts = 0;
		set_redis_up(c);
		return 0;
	}
	if (sh->redis != NULL)
		consumer_redis_drop(c);
	else
		metric_add(&wmetrics[WM_REDIS_ERRORS], 1);
	if (redis_setting_error(err)) {
		setting_error(c, "REDIS_URL", err);
		return -2;
	}
	return -1;
}

int consumer_redis_up(struct consumer *c)
{
	char err[640];
	int64_t until = give_up_at(c);

	for (unsigned attempt = 0; !*c->stop; attempt++) {
		int rc = redis_try(c, attempt, err, sizeof(err));

		if (rc == 0)
			return 0;
		if (rc == -2)
			return -1;
		log_retry(c, "redis", err);
		if (retry_wait(c, attempt, until, "redis", err) != 0)
			return -1;
	}
	return -1;
}

int consumer_redis_up_all(struct consumer *c)
{
	struct consumer_shard *was = c->sh;

	for (int i = 0; i < c->nshards; i++) {
		consumer_select(c, i);
		if (c->sh->redis == NULL && consumer_redis_up(c) != 0) {
			c->sh = was;
			return -1;
		}
	}
	c->sh = was;
	return 0;
}

int consumer_pg_up(struct consumer *c)
{
	char err[512];
	int64_t until = give_up_at(c);

	for (unsigned attempt = 0; c->sink == NULL; attempt++) {
		if (*c->stop)
			return -1;
		c->sink = sink_open(c->cfg->database_url, err, sizeof(err));
		if (c->sink != NULL) {
			if (attempt > 0)
				log_info("postgres: connected again after %u attempts", attempt);
			break;
		}
		metric_add(&wmetrics[WM_PG_ERRORS], 1);
		if (pgfail_is_setting(c->cfg->database_url, err))
			return setting_error(c, "DATABASE_URL", err);
		log_retry(c, "postgres", err);
		if (retry_wait(c, attempt, until, "postgres", err) != 0)
			return -1;
	}
	metric_set(&wmetrics[WM_PG_UP], 1);
	return 0;
}

static void pg_drop(struct consumer *c)
{
	sink_close(c->sink);
	c->sink = NULL;
	metric_add(&wmetrics[WM_PG_ERRORS], 1);
	metric_set(&wmetrics[WM_PG_UP], 0);
}

/* Turns one [id, fields] element into an item: decoded body and parsed message, or dead with
 * the reason. */
static void item_prepare(const redisReply *r, long long deliveries, long long max,
                         struct sink_item *it)
{
	char why[256];

	memset(it, 0, sizeof(*it));
	it->deliveries = deliveries;
	if (stream_entry_parse(r, &it->entry) != 0) {
		snprintf(it->reason, sizeof(it->reason), "malformed stream entry");
	} else if (deliveries > max) {
		snprintf(it->reason, sizeof(it->reason), "max deliveries: delivered %lld times",
		         deliveries);
	} else if (stream_entry_body(&it->entry, &it->body, &it->body_len, &it->owned, why,
	                             sizeof(why)) != 0) {
		snprintf(it->reason, sizeof(it->reason), "%s", why);
	} else if (vapi_msg_parse(it->body, it->body_len, &it->msg, why, sizeof(why)) != 0) {
		snprintf(it->reason, sizeof(it->reason), "%s", why);
	} else {
		return;
	}
	it->dead = true;
}

/* Orders a batch by call id, then stream id, so that concurrent workers lock rows in the
 * same order and cannot deadlock. */
static int item_cmp(const void *a, const void *b)
{
	const struct sink_item *x = *(struct sink_item *const *)a;
	const struct sink_item *y = *(struct sink_item *const *)b;
	const char *cx = x->dead ? NULL : x->msg.call_id, *cy = y->dead ? NULL : y->msg.call_id;
	int d = strcmp(cx ? cx : "", cy ? cy : "");
	long long ix = 0, iy = 0, sx = 0, sy = 0;

	if (d != 0)
		return d;
	/* Stream ids compare numerically: "ms-seq". */
	sscanf(x->entry.id, "%lld-%lld", &ix, &sx);
	sscanf(y->entry.id, "%lld-%lld", &iy, &sy);
	return ix != iy ? (ix < iy ? -1 : 1) : (sx < sy ? -1 : sx > sy);
}

/* Writes items[0..n) in one transaction, reconnecting and retrying as the failure calls for.
 * Returns 0 when committed; -1 with *rc_out (SINK_CONN only when stopping) otherwise. */
static int write_once(struct consumer *c, struct sink_item **items, size_t n,
                      enum sink_status *rc_out, char *err, size_t errlen)
{
	for (unsigned attempt = 0;; attempt++) {
		enum sink_status rc;

		if (consumer_pg_up(c) != 0) {
			*rc_out = SINK_CONN;
			return -1;
		}
		rc = sink_write(c->sink, items, n, err, errlen);
		if (rc == SINK_OK)
			return 0;
		if (rc == SINK_CONN) {
			log_warn("postgres: %s; reconnecting", err);
			pg_drop(c);
			backoff(c, attempt);
			continue;
		}
		if (rc == SINK_RETRY && attempt < CONSUMER_TXN_RETRIES) {
			util_sleep_ms(util_backoff_ms(attempt, CONSUMER_TXN_BACKOFF_BASE_MS,
			                              CONSUMER_TXN_BACKOFF_CAP_MS),
			              NULL);
			continue;
		}
		metric_add(&wmetrics[WM_PG_ERRORS], 1);
		*rc_out = rc;
		return -1;
	}
}

/* Writes the batch; when it fails through one message's fault, writes each message in its
 * own transaction so that only the bad ones are dead-lettered. Returns 0 when every item is
 * committed or marked dead; -1 when asked to stop with the batch unwritten. */
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

/* Appends the XADD of one dead letter to the pipeline: the entry as it was (body still
 * encoded, so a redrive restores it exactly), the reason, the original id and attempts. */
static void append_dead(struct consumer *c, const struct sink_item *it, const char *now)
{
	char recv[24], attempts[24];
	const char *argv[24];
	size_t lens[24];
	int n = 0;

#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s) ARG((s), strlen(s))
	ARGS("XADD");
	ARGS(c->sh->dead);
	ARGS("*");
	ARGS("reason");
	ARGS(it->reason);
	ARGS("original_id");
	ARGS(it->entry.id);
	snprintf(attempts, sizeof(attempts), "%lld", it->deliveries);
	ARGS("attempts");
	ARGS(attempts);
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
	if (it->entry.source != NULL) {
		ARGS(STREAM_F_SOURCE);
		ARGS(it->entry.source);
	}
	if (it->entry.enc != NULL) {
		ARGS(STREAM_F_ENC);
		ARGS(it->entry.enc);
	}
#undef ARG
#undef ARGS
	redisAppendCommandArgv(c->sh->redis, n, argv, lens);
}

/* Counts the batch's filed messages in this minute's field of the hour's hash, which the
 * status page draws (STREAM_FILED_KEY_FMT); the hash outlives the hour by two. Returns the
 * number of commands appended. */
static size_t append_filed(struct consumer *c, const struct sink_item *items, size_t n, int64_t now)
{
	char key[SHARDS_NAME + 40], minute[8], filed[24];
	long long k = 0;

	for (size_t i = 0; i < n; i++)
		k += !items[i].dead && !items[i].unrouted && !items[i].skip;
	if (k == 0)
		return 0;
	snprintf(key, sizeof(key), STREAM_FILED_KEY_FMT, c->sh->stream, (long long)(now / 3600000));
	snprintf(minute, sizeof(minute), "%d", (int)(now / 60000 % 60));
	snprintf(filed, sizeof(filed), "%lld", k);
	redisAppendCommand(c->sh->redis, "HINCRBY %s %s %s", key, minute, filed);
	redisAppendCommand(c->sh->redis, "EXPIRE %s 10800", key);
	return 2;
}

/* Dead letters, the XACK of the whole batch and the count of filed messages in one
 * MULTI/EXEC, so that an entry is never acked without its dead letter nor dead-lettered
 * twice. Returns 0, or -1 when Redis failed (the entries stay pending and are read again). */
static int ack_batch(struct consumer *c, struct sink_item *items, size_t n)
{
	const char **argv = calloc(n + 3, sizeof(*argv));
	char now[24];
	size_t replies = 3; /* MULTI, XACK, EXEC */
	int rc = 0;

	if (argv == NULL)
		return -1;
	snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
	redisAppendCommand(c->sh->redis, "MULTI");
	for (size_t i = 0; i < n; i++) {
		if (items[i].dead) {
			log_msg(LOGL_ERROR, "stream_id", items[i].entry.id, "dead-lettered: %s",
			        items[i].reason);
			append_dead(c, &items[i], now);
			replies++;
		}
	}
	argv[0] = "XACK";
	argv[1] = c->sh->stream;
	argv[2] = c->cfg->group;
	for (size_t i = 0; i < n; i++)
		argv[3 + i] = items[i].entry.id;
	redisAppendCommandArgv(c->sh->redis, (int)(n + 3), argv, NULL);
	replies += append_filed(c, items, n, util_now_ms());
	redisAppendCommand(c->sh->redis, "EXEC");
	for (size_t i = 0; i < replies; i++) {
		redisReply *r = NULL;

		if (redisGetReply(c->sh->redis, (void **)&r) != REDIS_OK) {
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_ERROR ||
		    (i == replies - 1 && r->type != REDIS_REPLY_ARRAY)) {
			log_error("ack: %s",
			          r->type == REDIS_REPLY_ERROR ? r->str : "EXEC aborted");
			rc = -1;
		}
		freeReplyObject(r);
	}
	free(argv);
	if (rc != 0 && c->sh->redis->err)
		consumer_redis_drop(c);
	else if (rc != 0)
		c->sh->read_pending = 1; /* still pending for us: read them again next */
	return rc;
}

static void count_outcomes(struct sink_item *items, size_t n, bool ack, struct batch_result *res)
{
	for (size_t i = 0; i < n; i++) {
		res->unrouted += items[i].unrouted;
		res->dead += items[i].dead;
		res->skipped += items[i].skip;
		if (items[i].unrouted && ack)
			log_msg(LOGL_WARN, "stream_id", items[i].entry.id, "unrouted: %s",
			        items[i].reason);
	}
	res->filed = n - res->unrouted - res->dead - res->skipped;
}

void consumer_process(struct consumer *c, const redisReply *entries, const long long *deliveries,
                      bool ack, consumer_filter filter, void *arg, struct batch_result *res)
{
	size_t n = entries->elements;
	struct sink_item *items = calloc(n, sizeof(*items));
	struct sink_item **order = calloc(n, sizeof(*order));
	int64_t t0 = util_mono_us();

	memset(res, 0, sizeof(*res));
	if (items == NULL || order == NULL) {
		log_error("out of memory for a batch of %zu", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		item_prepare(entries->element[i], deliveries ? deliveries[i] : 1,
		             c->cfg->max_deliveries, &items[i]);
		if (filter != NULL && !items[i].dead)
			filter(c, &items[i], arg);
		order[i] = &items[i];
	}
	qsort(order, n, sizeof(*order), item_cmp);
	if (write_batch(c, order, n) != 0)
		goto out; /* stopping during an outage: nothing acked, all stays pending */
	res->written = true;
	count_outcomes(items, n, ack, res);
	if (ack && ack_batch(c, items, n) == 0) {
		res->acked = true;
		metric_add(&wmetrics[WM_FILED], (int64_t)res->filed);
		metric_add(&wmetrics[WM_UNROUTED], (int64_t)res->unrouted);
		metric_add(&wmetrics[WM_DEAD], (int64_t)res->dead);
		metric_add(&wmetrics[WM_BATCHES], 1);
		metric_hist_observe(&wbatch_hist, util_mono_us() - t0);
	}
out:
	for (size_t i = 0; items != NULL && i < n; i++) {
		vapi_msg_free(&items[i].msg);
		free(items[i].owned);
	}
	free(order);
	free(items);
}

int consumer_deliveries(struct consumer *c, const redisReply *entries, long long *out)
{
	size_t n = entries->elements;
	char count[24];
	const char *argv[7] = {"XPENDING", c->sh->stream, c->cfg->group,   NULL,
	                       NULL,       count,         c->cfg->consumer};
	redisReply *r;

	for (size_t i = 0; i < n; i++)
		out[i] = 1;
	if (n == 0 || entries->element[0]->type != REDIS_REPLY_ARRAY ||
	    entries->element[n - 1]->type != REDIS_REPLY_ARRAY)
		return 0;
	argv[3] = entries->element[0]->element[0]->str;
	argv[4] = entries->element[n - 1]->element[0]->str;
	snprintf(count, sizeof(count), "%zu", n);
	r = redisconn_cmdv(c->sh->redis, 7, argv);
	if (r == NULL) {
		consumer_redis_drop(c);
		return -1;
	}
	/* Each row: [id, consumer, idle ms, deliveries]; entries and rows are both in id order. */
	for (size_t i = 0, j = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && j < n; i++) {
		const redisReply *row = r->element[i];

		if (row->type != REDIS_REPLY_ARRAY || row->elements < 4)
			continue;
		while (j < n && strcmp(entries->element[j]->element[0]->str, row->element[0]->str))
			j++;
		if (j < n)
			out[j++] = row->element[3]->integer;
	}
	freeReplyObject(r);
	return 0;
}

void consumer_process_redelivered(struct consumer *c, const redisReply *entries)
{
	long long *deliveries = calloc(entries->elements, sizeof(*deliveries));
	struct batch_result res;

	if (deliveries == NULL)
		return;
	if (consumer_deliveries(c, entries, deliveries) == 0)
		consumer_process(c, entries, deliveries, true, NULL, NULL, &res);
	free(deliveries);
}

/* Reads one batch, waiting up to block_ms (0: not at all). Returns the reply (free it) or
 * NULL when the connection failed. */
static redisReply *read_batch(struct consumer *c, long long block_ms)
{
	char count[24], block[24];
	const char *argv[] = {"XREADGROUP",
	                      "GROUP",
	                      c->cfg->group,
	                      c->cfg->consumer,
	                      "COUNT",
	                      count,
	                      "BLOCK",
	                      block,
	                      "STREAMS",
	                      c->sh->stream,
	                      c->sh->read_pending ? "0" : ">"};

	snprintf(count, sizeof(count), "%lld", c->cfg->batch);
	if (block_ms <= 0 || c->sh->read_pending) /* XREADGROUP without BLOCK does not wait */
		return redisconn_cmdv(c->sh->redis, 9,
		                      (const char *[]){argv[0], argv[1], argv[2], argv[3], argv[4],
		                                       argv[5], argv[8], argv[9], argv[10]});
	snprintf(block, sizeof(block), "%lld", block_ms);
	return redisconn_cmdv(c->sh->redis, 11, argv);
}

int consumer_step(struct consumer *c, long long block_ms)
{
	redisReply *r = read_batch(c, block_ms);
	const redisReply *entries;
	struct batch_result res;
	long long n;

	if (r == NULL) {
		log_warn("redis: %s: %s; reconnecting", c->sh->stream, c->sh->redis->errstr);
		consumer_redis_drop(c);
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* NOGROUP or UNBLOCKED (stream deleted): reconnecting re-creates the group; MOVED
		 * or READONLY: reconnecting finds the master serving the shard now. */
		log_error("XREADGROUP %s: %s", c->sh->stream, r->str);
		freeReplyObject(r);
		consumer_redis_drop(c);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) { /* nothing, or BLOCK timed out */
		freeReplyObject(r);
		return 0;
	}
	entries = r->element[0]->element[1];
	n = (long long)entries->elements;
	if (entries->elements == 0)
		c->sh->read_pending = 0; /* our pending list is empty: go on with new entries */
	else if (c->sh->read_pending)
		consumer_process_redelivered(c, entries);
	else
		consumer_process(c, entries, NULL, true, NULL, NULL, &res);
	freeReplyObject(r);
	return (int)n;
}

/* With several shards a round waits this long at most on one, so that entries arriving on
 * another are read soon after. */
#define CONSUMER_SHARD_BLOCK_MS 100

/* Connects the selected shard for the run command: one attempt, then the shard waits its
 * backoff while the others are served. Returns 0 when connected, -1 when not (now), -2 on a
 * setting error. */
static int shard_up(struct consumer *c)
{
	struct consumer_shard *sh = c->sh;
	char err[640];
	int rc;

	if (sh->redis != NULL)
		return 0;
	if (util_mono_ms() < sh->retry_at)
		return -1;
	rc = redis_try(c, sh->attempts, err, sizeof(err));
	if (rc == -1) {
		log_retry(c, "redis", err);
		sh->retry_at = util_mono_ms() + util_backoff_ms(sh->attempts, UTIL_BACKOFF_BASE_MS,
		                                                UTIL_BACKOFF_CAP_MS);
		sh->attempts++;
	}
	return rc;
}

long long consumer_round(struct consumer *c)
{
	long long got = 0;
	int up = 0, first = c->rr;

	c->rr = (c->rr + 1) % c->nshards;
	for (int k = 0; k < c->nshards && !*c->stop; k++) {
		int rc;

		consumer_select(c, (first + k) % c->nshards);
		rc = shard_up(c);
		if (rc == -2)
			return -1;
		if (rc != 0)
			continue;
		up++;
		rc = consumer_step(c, c->nshards == 1 ? c->cfg->block_ms : 0);
		if (rc > 0)
			got += rc;
	}
	if (up == 0 && !*c->stop) {
		/* Every shard down: wait for the soonest retry. */
		int64_t soonest = INT64_MAX, now = util_mono_ms();

		for (int i = 0; i < c->nshards; i++)
			if (c->shards[i].retry_at < soonest)
				soonest = c->shards[i].retry_at;
		if (soonest > now)
			util_sleep_ms(soonest - now, (volatile int *)c->stop);
		return -1;
	}
	if (got > 0 || *c->stop || c->nshards == 1)
		return got;
	/* Nothing anywhere: wait on one shard, a different one each round. */
	for (int k = 0; k < c->nshards; k++) {
		consumer_select(c, (first + k) % c->nshards);
		if (c->sh->redis != NULL) {
			long long rc = consumer_step(c, c->cfg->block_ms < CONSUMER_SHARD_BLOCK_MS
			                                    ? c->cfg->block_ms
			                                    : CONSUMER_SHARD_BLOCK_MS);
			return rc < 0 ? 0 : rc;
		}
	}
	return 0;
}

int consumer_run(const struct cfg *cfg, volatile sig_atomic_t *stop)
{
	struct consumer c;
	struct maint m;

	if (consumer_init(&c, cfg, stop) != 0)
		return 1;
	maint_init(&m, &c);
	if (c.nshards == 1)
		log_info("worker %s consuming %s as group %s, batches of %lld", cfg->consumer,
		         c.sh->stream, cfg->group, cfg->batch);
	else
		log_info("worker %s consuming %d shards %s ... %s as group %s, batches of %lld",
		         cfg->consumer, c.nshards, c.shards[0].stream,
		         c.shards[c.nshards - 1].stream, cfg->group, cfg->batch);
	/* The first connect retries as every operator command does; later a shard that fails
	 * waits its backoff while the others are served. */
	if (consumer_redis_up(&c) == 0) {
		while (!*stop && !c.failed) {
			if (consumer_pg_up(&c) != 0)
				break;
			if (consumer_round(&c) >= 0 || c.nshards > 1)
				maint_tick(&m);
		}
	}
	for (int i = 0; i < c.nshards; i++) {
		consumer_select(&c, i);
		maint_leave_group(&c);
	}
	consumer_close(&c);
	if (c.failed) {
		log_error("worker %s stopped: %s", cfg->consumer, c.why);
		return 1;
	}
	log_info("worker %s stopped", cfg->consumer);
	return 0;
}

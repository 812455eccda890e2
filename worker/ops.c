/* drain, replay, status and reroute. */
#include "ops.h"

#include "consumer.h"
#include "log.h"
#include "maint.h"
#include "opscli.h"
#include "progress.h"
#include "timefmt.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A draining worker waits this long per read so that it notices the end soon. */
#define OPS_DRAIN_BLOCK_MS 200
/* While draining, where it stands is printed this often. */
#define OPS_DRAIN_REPORT_MS 2000

static const char drain_usage[] =
    "usage: switchboard-worker [settings] drain [--timeout D]\n"
    "Joins the group as one more consumer, files what is lagging, takes over entries idle\n"
    "past WORKER_CLAIM_IDLE, and exits 0 printing \"drained: lag 0, pending 0\" once nothing\n"
    "is lagging or pending. While it waits it prints where it stands every 2s.\n"
    "  --timeout D     give up after D (default 5m; also how long Redis or PostgreSQL may\n"
    "                  stay unreachable) and exit 1 saying what is left\n";

static const char replay_usage[] =
    "usage: switchboard-worker [settings] replay --since TIME [--until TIME] [--org ID]\n"
    "                          [--type TYPE] [--dry-run] [--timeout D]\n"
    "Processes the entries still in the stream (the last SWITCHBOARD_RETENTION) from TIME on\n"
    "again, in order; writes are idempotent. TIME is ISO-8601 (2026-11-25T10:00:00Z) or\n"
    "epoch milliseconds. Progress goes to stderr, the summary to stdout.\n"
    "  --since TIME    first entry to replay (required)\n"
    "  --until TIME    last one (default: now)\n"
    "  --org ID        only entries that route to organization ID\n"
    "  --type TYPE     only messages of this type (status-update, end-of-call-report, ...)\n"
    "  --dry-run       count what matches, by type and organization, and the malformed\n"
    "                  entries a replay would skip; change nothing\n" OPS_TIMEOUT_HELP;

static const char reroute_usage[] =
    "usage: switchboard-worker [settings] reroute [--timeout D]\n"
    "Routes the parked (unrouted) messages again now, files those that route and prints\n"
    "\"re-routed: N filed, M still unrouted\".\n" OPS_TIMEOUT_HELP;

static const char status_usage[] =
    "usage: switchboard-worker [settings] status [--json] [--timeout D]\n"
    "Prints the stream, the consumer group (lag, pending, the age of the oldest pending\n"
    "entry), each consumer, the dead letters and the parked messages. Times are UTC.\n"
    "  --json          the same as one JSON object (ages in seconds, -1: none)\n" OPS_TIMEOUT_HELP;

/* One "lag N, pending M across K consumers" line of drain. */
static void drain_report(const char *what, const struct group_state *g, int64_t since)
{
	char d[24];

	printf("%s: lag %lld, pending %lld across %lld consumers (%s)\n", what, g->lag, g->pending,
	       g->consumers, timefmt_duration_ms(util_mono_ms() - since, d, sizeof(d)));
	fflush(stdout);
}

/* One pass of drain: on each shard reconnects, files a batch, claims; then reads the group's
 * state over all. Returns 0 with *g filled, 1 to go round again, -1 when a connect gave up
 * (printed). */
static int drain_pass(struct consumer *c, long long claim_idle_ms, struct group_state *g)
{
	long long claimed;
	int again = 0;

	for (int i = 0; i < c->nshards; i++) {
		consumer_select(c, i);
		if (consumer_redis_up(c) != 0 || consumer_pg_up(c) != 0) {
			ops_fail(c, "drain");
			return -1;
		}
		if (consumer_step(c, c->cfg->block_ms / c->nshards) < 0 ||
		    maint_claim(c, claim_idle_ms, &claimed) != 0)
			again = 1;
	}
	if (again || maint_group_total(c, g) < 0)
		return 1;
	return 0;
}

int ops_drain(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	struct ops_args a = {.usage = drain_usage, .opts = opts, .timeout_ms = 5 * 60 * 1000};
	struct cfg dc = *cfg;
	struct consumer c;
	struct group_state g = {0};
	int64_t start, next_report;
	char d[24];
	int rc;

	if ((rc = ops_parse(argc, argv, &a)) != 0)
		return rc > 0 ? 0 : 2;
	dc.block_ms = OPS_DRAIN_BLOCK_MS;
	start = util_mono_ms();
	next_report = start + OPS_DRAIN_REPORT_MS;
	if (ops_connect(&c, &dc, stop, "drain", a.timeout_ms, true) != 0)
		return 1;
	for (rc = 1; !*stop;) {
		int pass = drain_pass(&c, dc.claim_idle_ms, &g);

		if (pass < 0)
			break;
		if (pass == 0 && g.lag == 0 && g.pending == 0) {
			printf("drained: lag 0, pending 0\n");
			rc = 0;
			break;
		}
		if (util_mono_ms() > start + a.timeout_ms) {
			printf("drain timed out after %s: lag %lld, pending %lld across %lld "
			       "consumers\n",
			       timefmt_duration_ms(a.timeout_ms, d, sizeof(d)), g.lag, g.pending,
			       g.consumers);
			break;
		}
		if (pass == 0 && util_mono_ms() >= next_report) {
			drain_report("draining", &g, start);
			next_report = util_mono_ms() + OPS_DRAIN_REPORT_MS;
		}
	}
	for (int i = 0; i < c.nshards; i++) {
		consumer_select(&c, i);
		maint_leave_group(&c);
	}
	consumer_close(&c);
	return rc;
}

/* replay's filters and the dry run's tally. */
struct replay {
	const char *org, *type;
	int dry_run;
	json_t *tally; /* {"type": {"org": n}} */
	long long matched;
};

static void replay_filter(struct consumer *c, struct sink_item *it, void *arg)
{
	struct replay *rp = arg;
	char org[256] = "", err[256];
	json_t *per_type;

	if (rp->type != NULL && strcmp(it->msg.type, rp->type) != 0) {
		it->skip = true;
		return;
	}
	if ((rp->org != NULL || rp->dry_run) &&
	    sink_route(c->sink, &it->msg, org, sizeof(org), err, sizeof(err)) != SINK_OK)
		log_warn("replay: routing look-up failed: %s", err);
	if (rp->org != NULL && strcmp(org, rp->org) != 0) {
		it->skip = true;
		return;
	}
	rp->matched++;
	if (!rp->dry_run)
		return;
	it->skip = true;
	per_type = json_object_get(rp->tally, it->msg.type);
	if (per_type == NULL) {
		per_type = json_object();
		json_object_set_new(rp->tally, it->msg.type, per_type);
	}
	if (org[0] == '\0')
		snprintf(org, sizeof(org), "(unrouted)");
	json_object_set_new(per_type, org,
	                    json_integer(json_integer_value(json_object_get(per_type, org)) + 1));
}

/* Replays one page of XRANGE from *start (advanced past the page). Returns the number of
 * entries read, or -1 when Redis failed. */
static long long replay_page(struct consumer *c, char *start, size_t size, const char *end,
                             struct replay *rp, struct batch_result *total)
{
	char count[24];
	const char *argv[] = {"XRANGE", c->sh->stream, start, end, "COUNT", count};
	redisReply *r;
	struct batch_result res;
	long long n;

	snprintf(count, sizeof(count), "%lld", c->cfg->batch);
	r = redisconn_cmdv(c->sh->redis, 6, argv);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		if (r == NULL)
			consumer_redis_drop(c);
		freeReplyObject(r);
		return -1;
	}
	n = (long long)r->elements;
	if (n > 0) {
		consumer_process(c, r, NULL, false, replay_filter, rp, &res);
		total->filed += res.filed;
		total->unrouted += res.unrouted;
		total->dead += res.dead;
		snprintf(start, size, "(%s", r->element[n - 1]->element[0]->str);
	}
	freeReplyObject(r);
	return n;
}

static void replay_report(const struct replay *rp, const struct batch_result *t, long long read)
{
	const char *type, *org;
	json_t *per, *v;

	if (!rp->dry_run) {
		printf("replayed %lld matching entries: %zu filed, %zu unrouted, %zu malformed "
		       "(skipped)\n",
		       rp->matched, t->filed, t->unrouted, t->dead);
		return;
	}
	printf("dry run: %lld of %lld entries match, %zu malformed (a replay skips them); "
	       "nothing was changed\n",
	       rp->matched, read, t->dead);
	json_object_foreach(rp->tally, type, per)
	{
		json_object_foreach(per, org, v)
		{
			printf("  %-24s %-28s %lld\n", type, org, (long long)json_integer_value(v));
		}
	}
}

/* The stream ids replay starts after and ends at, from the options; -1 after printing. */
static int replay_range(const char *since, const char *until, char *start, size_t ssize, char *end,
                        size_t esize)
{
	int64_t since_ms, until_ms = util_now_ms();

	if (since == NULL) {
		fprintf(stderr, "replay: --since TIME is required (see replay --help)\n");
		return -1;
	}
	if (ops_time_opt("replay", "--since", since, &since_ms) != 0 ||
	    (until != NULL && ops_time_opt("replay", "--until", until, &until_ms) != 0))
		return -1;
	snprintf(start, ssize, "%lld", (long long)since_ms);
	snprintf(end, esize, "%lld", (long long)until_ms);
	return 0;
}

int ops_replay(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	const char *since = NULL, *until = NULL;
	struct replay rp = {0};
	const struct ops_opt opts[] = {{"since", &since, NULL},        {"until", &until, NULL},
	                               {"org", &rp.org, NULL},         {"type", &rp.type, NULL},
	                               {"dry-run", NULL, &rp.dry_run}, {NULL, NULL, NULL}};
	struct ops_args a = {.usage = replay_usage, .opts = opts};
	struct consumer c;
	struct batch_result total = {0};
	struct progress pr;
	char since_id[64], start[64], end[32];
	int rc;

	if ((rc = ops_parse(argc, argv, &a)) != 0)
		return rc > 0 ? 0 : 2;
	if (replay_range(since, until, since_id, sizeof(since_id), end, sizeof(end)) != 0)
		return 2;
	if (ops_connect(&c, cfg, stop, "replay", a.timeout_ms, true) != 0)
		return 1;
	rp.tally = json_object();
	progress_start(&pr, stderr, rp.dry_run ? "replay (dry run)" : "replay", "entries", -1);
	for (int i = 0; i < c.nshards && rc == 0 && !*stop; i++) { /* shard by shard */
		consumer_select(&c, i);
		snprintf(start, sizeof(start), "%s", since_id);
		for (long long n = 1; n > 0 && !*stop;) {
			if (consumer_redis_up(&c) != 0 || consumer_pg_up(&c) != 0) {
				rc = 1;
				break;
			}
			n = replay_page(&c, start, sizeof(start), end, &rp, &total);
			if (n < 0) {
				log_warn("replay: Redis failed on %s; retrying the page",
				         c.sh->stream);
				n = 1;
			} else {
				progress_add(&pr, n);
			}
		}
	}
	progress_end(&pr);
	if (rc != 0)
		ops_fail(&c, "replay");
	if (*stop)
		rc = 1;
	replay_report(&rp, &total, pr.done);
	json_decref(rp.tally);
	consumer_close(&c);
	return rc;
}

int ops_reroute(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	struct ops_args a = {.usage = reroute_usage, .opts = opts};
	struct consumer c;
	long long filed, left;
	int rc;

	if ((rc = ops_parse(argc, argv, &a)) != 0)
		return rc > 0 ? 0 : 2;
	if (ops_connect(&c, cfg, stop, "reroute", a.timeout_ms, true) != 0)
		return 1;
	rc = maint_reroute(&c, &filed, &left);
	if (rc == 0)
		printf("re-routed: %lld filed, %lld still unrouted\n", filed, left);
	else if (c.failed)
		ops_fail(&c, "reroute");
	else
		fprintf(stderr, "reroute: failed (the error is logged above)\n");
	consumer_close(&c);
	return rc == 0 ? 0 : 1;
}

/* Adds each consumer's pending count and idle time on the selected shard to consumers (an
 * object): pending summed over shards, the shortest idle time kept. */
static int status_consumers(struct consumer *c, json_t *consumers)
{
	const char *argv[] = {"XINFO", "CONSUMERS", c->sh->stream, c->cfg->group};
	redisReply *r = redisconn_cmdv(c->sh->redis, 4, argv);

	if (r == NULL)
		return -1;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *row = r->element[i];
		json_t *o = json_object(), *had;
		const char *name = "";

		for (size_t k = 0; row->type == REDIS_REPLY_ARRAY && k + 1 < row->elements;
		     k += 2) {
			const char *key = row->element[k]->str;
			const redisReply *v = row->element[k + 1];

			if (strcmp(key, "name") == 0)
				name = v->str;
			else if (v->type == REDIS_REPLY_INTEGER)
				json_object_set_new(o, key, json_integer(v->integer));
		}
		had = json_object_get(consumers, name);
		if (had != NULL) {
			json_int_t idle = json_integer_value(json_object_get(had, "idle"));

			json_object_set_new(
			    o, "pending",
			    json_integer(json_integer_value(json_object_get(o, "pending")) +
			                 json_integer_value(json_object_get(had, "pending"))));
			if (idle < json_integer_value(json_object_get(o, "idle")))
				json_object_set_new(o, "idle", json_integer(idle));
		}
		json_object_set_new(consumers, name, o);
	}
	freeReplyObject(r);
	return 0;
}

/* Age in seconds of the selected shard's oldest pending entry (by its id's time), or -1 when
 * none. */
static long long oldest_pending_age(struct consumer *c)
{
	const char *argv[] = {"XPENDING", c->sh->stream, c->cfg->group, "-", "+", "1"};
	redisReply *r = redisconn_cmdv(c->sh->redis, 6, argv);
	long long age = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
		age = (util_now_ms() - timefmt_stream_id_ms(r->element[0]->element[0]->str)) / 1000;
	freeReplyObject(r);
	return age;
}

/* XLEN of key on the selected shard; -1 when it fails. */
static long long xlen(struct consumer *c, const char *key)
{
	const char *argv[] = {"XLEN", key};
	redisReply *r = redisconn_cmdv(c->sh->redis, 2, argv);
	long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return n;
}

static json_t *status_collect(struct consumer *c)
{
	struct group_state g;
	long long parked = -1, age = -1, length = 0, dead = 0, oldest = -1;
	char err[256];
	json_t *st = json_object(), *consumers = json_object();

	if (maint_group_total(c, &g) != 0)
		memset(&g, 0, sizeof(g));
	for (int i = 0; i < c->nshards; i++) {
		long long a;

		consumer_select(c, i);
		if (c->sh->redis == NULL) {
			util_add_known(&length, -1);
			util_add_known(&dead, -1);
			continue;
		}
		(void)status_consumers(c, consumers);
		util_add_known(&length, xlen(c, c->sh->stream));
		util_add_known(&dead, xlen(c, c->sh->dead));
		a = oldest_pending_age(c);
		if (a > oldest)
			oldest = a;
	}
	if (sink_parked_stats(c->sink, &parked, &age, err, sizeof(err)) != SINK_OK)
		parked = age = -1;
	json_object_set_new(st, "stream",
	                    json_string(c->nshards == 1 ? c->shards[0].stream : c->cfg->stream));
	json_object_set_new(st, "shards", json_integer(c->nshards));
	json_object_set_new(st, "length", json_integer(length));
	json_object_set_new(st, "group", json_string(c->cfg->group));
	json_object_set_new(st, "lag", json_integer(g.lag));
	json_object_set_new(st, "pending", json_integer(g.pending));
	json_object_set_new(st, "oldest_pending_age_s", json_integer(oldest));
	json_object_set_new(st, "last_delivered_id", json_string(g.last_delivered));
	json_object_set_new(st, "consumers", consumers);
	json_object_set_new(st, "dead_letters", json_integer(dead));
	json_object_set_new(st, "unrouted", json_integer(parked));
	json_object_set_new(st, "unrouted_oldest_age_s", json_integer(parked > 0 ? age : -1));
	return st;
}

static long long st_int(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* "3m12s" for an age in seconds, or the text for "none" when age < 0. */
static const char *age_text(long long age_s, const char *none, char *buf, size_t size)
{
	return age_s < 0 ? none : timefmt_duration_ms(age_s * 1000, buf, size);
}

static void status_text(json_t *st)
{
	const char *name, *last = json_string_value(json_object_get(st, "last_delivered_id"));
	char a[24], t[40];
	json_t *v;

	if (st_int(st, "shards") > 1)
		printf("stream %s, %lld shards: %lld entries\n",
		       json_string_value(json_object_get(st, "stream")), st_int(st, "shards"),
		       st_int(st, "length"));
	else
		printf("stream %s: %lld entries\n",
		       json_string_value(json_object_get(st, "stream")), st_int(st, "length"));
	printf("group %s: lag %lld, ", json_string_value(json_object_get(st, "group")),
	       st_int(st, "lag"));
	if (st_int(st, "pending") == 0)
		printf("none pending");
	else
		printf("pending %lld (oldest %s)", st_int(st, "pending"),
		       age_text(st_int(st, "oldest_pending_age_s"), "unknown", a, sizeof(a)));
	printf(", last delivered %s", last);
	if (timefmt_stream_id_ms(last) > 0)
		printf(" (%s)", timefmt_iso_ms(timefmt_stream_id_ms(last), t, sizeof(t)));
	printf("\n");
	json_object_foreach(json_object_get(st, "consumers"), name, v)
	{
		printf("  consumer %-32s pending %lld, idle %s\n", name, st_int(v, "pending"),
		       timefmt_duration_ms(st_int(v, "idle"), a, sizeof(a)));
	}
	printf("dead letters: %lld\n", st_int(st, "dead_letters"));
	if (st_int(st, "unrouted") < 0)
		printf("unrouted: unknown (PostgreSQL did not answer)\n");
	else if (st_int(st, "unrouted") == 0)
		printf("unrouted: 0\n");
	else
		printf("unrouted: %lld (oldest %s)\n", st_int(st, "unrouted"),
		       age_text(st_int(st, "unrouted_oldest_age_s"), "unknown", a, sizeof(a)));
}

int ops_status(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	int as_json = 0, rc;
	const struct ops_opt opts[] = {{"json", NULL, &as_json}, {NULL, NULL, NULL}};
	struct ops_args a = {.usage = status_usage, .opts = opts};
	struct consumer c;
	json_t *st;

	if ((rc = ops_parse(argc, argv, &a)) != 0)
		return rc > 0 ? 0 : 2;
	if (ops_connect(&c, cfg, stop, "status", a.timeout_ms, true) != 0)
		return 1;
	st = status_collect(&c);
	if (as_json) {
		char *s = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);

		printf("%s\n", s);
		free(s);
	} else {
		status_text(st);
	}
	json_decref(st);
	consumer_close(&c);
	return 0;
}

/* drain, replay, status and reroute. */
#include "ops.h"

#include "consumer.h"
#include "log.h"
#include "maint.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A draining worker waits this long per read so that it notices the end soon. */
#define OPS_DRAIN_BLOCK_MS 200

int ops_parse(int argc, char **argv, const struct ops_opt *opts, const char **pos, int npos,
              int *nposp)
{
	*nposp = 0;
	for (int i = 1; i < argc; i++) {
		const struct ops_opt *o = opts;

		if (strncmp(argv[i], "--", 2) != 0) {
			if (*nposp >= npos) {
				fprintf(stderr, "%s: unexpected argument \"%s\"\n", argv[0],
				        argv[i]);
				return -1;
			}
			pos[(*nposp)++] = argv[i];
			continue;
		}
		while (o->name != NULL && strcmp(o->name, argv[i] + 2) != 0)
			o++;
		if (o->name == NULL) {
			fprintf(stderr,
			        "%s: unknown option %s (settings such as --redis-url go "
			        "before the command)\n",
			        argv[0], argv[i]);
			return -1;
		}
		if (o->flag != NULL) {
			*o->flag = 1;
		} else if (i + 1 >= argc) {
			fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
			return -1;
		} else {
			*o->value = argv[++i];
		}
	}
	return 0;
}

/* Parses a TIME option; prints the error. */
static int parse_time_opt(const char *cmd, const char *name, const char *v, int64_t *ms)
{
	if (util_parse_time_ms(v, ms) == 0)
		return 0;
	fprintf(stderr,
	        "%s: %s: expected an ISO-8601 time (2026-11-25T10:00:00Z) or epoch "
	        "milliseconds, got \"%s\"\n",
	        cmd, name, v);
	return -1;
}

/* Connects both; returns 0, or -1 when stopped first. */
static int connect_all(struct consumer *c)
{
	return consumer_redis_up(c) == 0 && consumer_pg_up(c) == 0 ? 0 : -1;
}

int ops_drain(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	const char *timeout_s = "5m";
	const struct ops_opt opts[] = {{"timeout", &timeout_s, NULL}, {NULL, NULL, NULL}};
	struct cfg dc = *cfg;
	struct consumer c;
	struct group_state g = {0};
	long long timeout_ms, claimed;
	int64_t deadline;
	int npos, rc = 1;

	if (ops_parse(argc, argv, opts, NULL, 0, &npos) != 0)
		return 2;
	if (util_parse_duration_ms(timeout_s, &timeout_ms) != 0) {
		fprintf(stderr, "drain: --timeout: expected a duration such as 90s or 5m\n");
		return 2;
	}
	dc.block_ms = OPS_DRAIN_BLOCK_MS;
	if (consumer_init(&c, &dc, stop) != 0)
		return 1;
	deadline = util_mono_ms() + timeout_ms;
	while (!*stop && connect_all(&c) == 0) {
		if (consumer_step(&c) != 0 || maint_claim(&c, dc.claim_idle_ms, &claimed) != 0 ||
		    maint_group_state(&c, &g) < 0)
			continue;
		if (g.lag == 0 && g.pending == 0) {
			printf("drained: lag 0, pending 0\n");
			rc = 0;
			break;
		}
		if (util_mono_ms() > deadline) {
			printf("drain timed out after %s: lag %lld, pending %lld across %lld "
			       "consumers\n",
			       timeout_s, g.lag, g.pending, g.consumers);
			break;
		}
	}
	maint_leave_group(&c);
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
	const char *argv[] = {"XRANGE", c->cfg->stream, start, end, "COUNT", count};
	redisReply *r;
	struct batch_result res;
	long long n;

	snprintf(count, sizeof(count), "%lld", c->cfg->batch);
	r = redisconn_cmdv(c->redis, 6, argv);
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

static void replay_report(const struct replay *rp, const struct batch_result *t)
{
	const char *type, *org;
	json_t *per, *v;

	if (!rp->dry_run) {
		printf("replayed %lld matching entries: %zu filed, %zu unrouted, %zu malformed "
		       "(skipped)\n",
		       rp->matched, t->filed, t->unrouted, t->dead);
		return;
	}
	printf("dry run: %lld entries match; nothing was changed\n", rp->matched);
	json_object_foreach(rp->tally, type, per)
	{
		json_object_foreach(per, org, v)
		{
			printf("  %-24s %-28s %lld\n", type, org, (long long)json_integer_value(v));
		}
	}
}

int ops_replay(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	const char *since = NULL, *until = NULL;
	struct replay rp = {0};
	const struct ops_opt opts[] = {{"since", &since, NULL},        {"until", &until, NULL},
	                               {"org", &rp.org, NULL},         {"type", &rp.type, NULL},
	                               {"dry-run", NULL, &rp.dry_run}, {NULL, NULL, NULL}};
	struct consumer c;
	struct batch_result total = {0};
	char start[64], end[32];
	int64_t since_ms, until_ms = util_now_ms();
	int npos, rc = 0;

	if (ops_parse(argc, argv, opts, NULL, 0, &npos) != 0)
		return 2;
	if (since == NULL) {
		fprintf(stderr, "replay: --since TIME is required\n");
		return 2;
	}
	if (parse_time_opt("replay", "--since", since, &since_ms) != 0 ||
	    (until != NULL && parse_time_opt("replay", "--until", until, &until_ms) != 0))
		return 2;
	snprintf(start, sizeof(start), "%lld", (long long)since_ms);
	snprintf(end, sizeof(end), "%lld", (long long)until_ms);
	if (consumer_init(&c, cfg, stop) != 0)
		return 1;
	rp.tally = json_object();
	for (long long n = 1; n > 0 && !*stop;) {
		if (connect_all(&c) != 0)
			break;
		n = replay_page(&c, start, sizeof(start), end, &rp, &total);
		if (n < 0) {
			log_warn("replay: Redis failed; retrying the page");
			n = 1;
		}
	}
	if (*stop)
		rc = 1;
	replay_report(&rp, &total);
	json_decref(rp.tally);
	consumer_close(&c);
	return rc;
}

int ops_reroute(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	struct consumer c;
	long long filed, left;
	int npos, rc;

	if (ops_parse(argc, argv, opts, NULL, 0, &npos) != 0)
		return 2;
	if (consumer_init(&c, cfg, stop) != 0)
		return 1;
	rc = maint_reroute(&c, &filed, &left);
	if (rc == 0)
		printf("re-routed: %lld filed, %lld still unrouted\n", filed, left);
	consumer_close(&c);
	return rc == 0 ? 0 : 1;
}

/* Adds pending count and oldest pending age per consumer to consumers (an object). */
static int status_consumers(struct consumer *c, json_t *consumers)
{
	const char *argv[] = {"XINFO", "CONSUMERS", c->cfg->stream, c->cfg->group};
	redisReply *r = redisconn_cmdv(c->redis, 4, argv);

	if (r == NULL)
		return -1;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *row = r->element[i];
		json_t *o = json_object();
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
		json_object_set_new(consumers, name, o);
	}
	freeReplyObject(r);
	return 0;
}

/* Age in seconds of the oldest pending entry (by its id's time), or -1 when none. */
static long long oldest_pending_age(struct consumer *c)
{
	const char *argv[] = {"XPENDING", c->cfg->stream, c->cfg->group, "-", "+", "1"};
	redisReply *r = redisconn_cmdv(c->redis, 6, argv);
	long long age = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
		age = (util_now_ms() - strtoll(r->element[0]->element[0]->str, NULL, 10)) / 1000;
	freeReplyObject(r);
	return age;
}

static long long xlen(struct consumer *c, const char *key)
{
	const char *argv[] = {"XLEN", key};
	redisReply *r = redisconn_cmdv(c->redis, 2, argv);
	long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return n;
}

static json_t *status_collect(struct consumer *c)
{
	struct group_state g;
	long long parked = -1, age = -1;
	char err[256];
	json_t *st = json_object(), *consumers = json_object();

	if (maint_group_state(c, &g) != 0)
		memset(&g, 0, sizeof(g));
	(void)status_consumers(c, consumers);
	if (sink_parked_stats(c->sink, &parked, &age, err, sizeof(err)) != SINK_OK)
		parked = age = -1;
	json_object_set_new(st, "stream", json_string(c->cfg->stream));
	json_object_set_new(st, "length", json_integer(xlen(c, c->cfg->stream)));
	json_object_set_new(st, "group", json_string(c->cfg->group));
	json_object_set_new(st, "lag", json_integer(g.lag));
	json_object_set_new(st, "pending", json_integer(g.pending));
	json_object_set_new(st, "oldest_pending_age_s", json_integer(oldest_pending_age(c)));
	json_object_set_new(st, "last_delivered_id", json_string(g.last_delivered));
	json_object_set_new(st, "consumers", consumers);
	json_object_set_new(st, "dead_letters", json_integer(xlen(c, c->cfg->dead_stream)));
	json_object_set_new(st, "unrouted", json_integer(parked));
	json_object_set_new(st, "unrouted_oldest_age_s", json_integer(age));
	return st;
}

static void status_text(json_t *st)
{
	const char *name;
	json_t *v;

	printf("stream %s: %lld entries\n", json_string_value(json_object_get(st, "stream")),
	       (long long)json_integer_value(json_object_get(st, "length")));
	printf("group %s: lag %lld, pending %lld, oldest pending %llds, last delivered %s\n",
	       json_string_value(json_object_get(st, "group")),
	       (long long)json_integer_value(json_object_get(st, "lag")),
	       (long long)json_integer_value(json_object_get(st, "pending")),
	       (long long)json_integer_value(json_object_get(st, "oldest_pending_age_s")),
	       json_string_value(json_object_get(st, "last_delivered_id")));
	json_object_foreach(json_object_get(st, "consumers"), name, v)
	{
		printf("  consumer %-32s pending %lld, idle %llds\n", name,
		       (long long)json_integer_value(json_object_get(v, "pending")),
		       (long long)json_integer_value(json_object_get(v, "idle")) / 1000);
	}
	printf("dead letters: %lld\n",
	       (long long)json_integer_value(json_object_get(st, "dead_letters")));
	printf("unrouted: %lld (oldest %llds)\n",
	       (long long)json_integer_value(json_object_get(st, "unrouted")),
	       (long long)json_integer_value(json_object_get(st, "unrouted_oldest_age_s")));
}

int ops_status(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	int as_json = 0, npos;
	const struct ops_opt opts[] = {{"json", NULL, &as_json}, {NULL, NULL, NULL}};
	struct consumer c;
	json_t *st;

	if (ops_parse(argc, argv, opts, NULL, 0, &npos) != 0)
		return 2;
	if (consumer_init(&c, cfg, stop) != 0 || connect_all(&c) != 0)
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

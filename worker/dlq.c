/* The dead-letter stream: the dlq command, list, show, delete and purge. */
#include "ops.h"

#include "dlqfix.h"
#include "dlqsel.h"
#include "opscli.h"
#include "stream.h"
#include "timefmt.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most ids one delete or redrive names. */
#define DLQ_MAX_IDS 1024

static const char dlq_usage[] =
    "usage: switchboard-worker [settings] dlq SUBCOMMAND [options]\n"
    "The dead-letter stream (SWITCHBOARD_DEAD_STREAM). Subcommands (each has --help):\n"
    "  list [--reason TEXT] [--since TIME] [--until TIME] [--limit N]\n"
    "                      ID, DEAD_AT, CALL_ID, ATTEMPTS and REASON of each dead letter\n"
    "  show ID             every field, with readable times, and the body\n"
    "  edit ID             edit the body in $VISUAL or $EDITOR, check it, put it back into\n"
    "                      the main stream as a new entry, then remove the dead letter\n"
    "  redrive ID... | --all | [--reason TEXT] [--since TIME] [--until TIME] [--limit N]\n"
    "                      put dead letters back into the main stream as they are\n"
    "  delete ID...        remove dead letters for good\n"
    "  purge --before TIME remove every dead letter from before TIME\n"
    "TIME is ISO-8601 (2026-11-25T10:00:00Z) or epoch milliseconds; --since and --until\n"
    "select by when the entry was dead-lettered. Every subcommand takes --timeout D (how long\n"
    "to wait for Redis, default 10s).\n";

static const char list_usage[] =
    "usage: switchboard-worker [settings] dlq list [--reason TEXT] [--since TIME]\n"
    "                          [--until TIME] [--limit N] [--timeout D]\n"
    "Lists dead letters, oldest first: ID, DEAD_AT (UTC), CALL_ID (message.call.id, - when\n"
    "the body has none), ATTEMPTS and REASON.\n" DLQ_FILTER_HELP
    "  --limit N       at most N (default 100)\n" OPS_TIMEOUT_HELP;

static const char show_usage[] =
    "usage: switchboard-worker [settings] dlq show ID [--timeout D]\n"
    "Prints every field of dead letter ID (times also in ISO-8601 UTC) and its body as\n"
    "received.\n" OPS_TIMEOUT_HELP;

static const char delete_usage[] =
    "usage: switchboard-worker [settings] dlq delete ID... [--timeout D]\n"
    "Removes the dead letters named, for good; exits 1 when one of them does not "
    "exist.\n" OPS_TIMEOUT_HELP;

static const char purge_usage[] =
    "usage: switchboard-worker [settings] dlq purge --before TIME [--timeout D]\n"
    "Removes every dead letter from before TIME (ISO-8601 or epoch ms), for "
    "good.\n" OPS_TIMEOUT_HELP;

/* Parses a subcommand's options: 0 to go on, else the exit code (0 after --help). */
static int parse_or_exit(int argc, char **argv, struct ops_args *a, int *exit_code)
{
	int rc = ops_parse(argc, argv, a);

	*exit_code = rc > 0 ? 0 : 2;
	return rc;
}

static int list_row(struct consumer *c, const redisReply *e, void *arg)
{
	char t[40], call[128];
	int64_t at = timefmt_stream_id_ms(e->element[0]->str);

	(void)c;
	(*(long long *)arg)++;
	printf("%-20s %-24s %-28s %-8s %.100s\n", e->element[0]->str,
	       timefmt_iso_ms(at, t, sizeof(t)), dlq_call_id(e, call, sizeof(call)),
	       dlq_field_str(e, "attempts"), dlq_field_str(e, "reason"));
	return 0;
}

static int dlq_list(struct consumer *c, int argc, char **argv, long long timeout_ms)
{
	const char *reason = NULL, *since = NULL, *until = NULL, *limit = "100";
	const struct ops_opt opts[] = {{"reason", &reason, NULL},
	                               {"since", &since, NULL},
	                               {"until", &until, NULL},
	                               {"limit", &limit, NULL},
	                               {NULL, NULL, NULL}};
	struct ops_args a = {.usage = list_usage, .opts = opts, .timeout_ms = timeout_ms};
	struct dlq_filter f;
	long long shown = 0;
	int code;

	if (parse_or_exit(argc, argv, &a, &code) != 0)
		return code;
	if (dlq_filter_parse("dlq list", reason, since, until, limit, &f) != 0)
		return 2;
	printf("%-20s %-24s %-28s %-8s %s\n", "ID", "DEAD_AT", "CALL_ID", "ATTEMPTS", "REASON");
	if (dlq_each(c, &f, list_row, &shown) != 0) {
		fprintf(stderr, "dlq list: Redis failed while reading %s\n", c->sh->dead);
		return 1;
	}
	if (shown == 0)
		printf("(no dead letters%s)\n",
		       reason != NULL || since != NULL || until != NULL ? " match" : "");
	return 0;
}

/* "dead_at: 1795629150045 (2026-11-25T10:00:00.045Z)" for the fields that hold times. */
static void show_field(const char *k, const redisReply *v)
{
	long long ms;
	char t[40];

	if ((strcmp(k, "dead_at") == 0 || strcmp(k, STREAM_F_RECEIVED_AT) == 0) &&
	    util_parse_ll(v->str, &ms) == 0)
		printf("%s: %s (%s)\n", k, timefmt_iso_ms(ms, t, sizeof(t)), v->str);
	else
		printf("%s: %s\n", k, v->str);
}

static int dlq_show(struct consumer *c, int argc, char **argv, long long timeout_ms)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	const char *id[1];
	struct ops_args a = {
	    .usage = show_usage, .opts = opts, .pos = id, .npos = 1, .timeout_ms = timeout_ms};
	const redisReply *fields;
	const char *body;
	char t[40], why[256], *owned;
	size_t len;
	redisReply *r;
	int code, failed;

	if (parse_or_exit(argc, argv, &a, &code) != 0)
		return code;
	if (a.nposv != 1) {
		fprintf(stderr, "dlq show: which dead letter? (dlq show ID)\n");
		return 2;
	}
	r = dlq_get(c, id[0], &failed);
	if (r == NULL) {
		fprintf(stderr, "dlq show: %s\n", failed ? "Redis failed" : "no such dead letter");
		return 1;
	}
	printf("id: %s (dead-lettered %s)\n", r->element[0]->element[0]->str,
	       timefmt_iso_ms(timefmt_stream_id_ms(r->element[0]->element[0]->str), t, sizeof(t)));
	fields = r->element[0]->element[1];
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (strcmp(fields->element[i]->str, STREAM_F_BODY) != 0)
			show_field(fields->element[i]->str, fields->element[i + 1]);
	if (dlq_body(r->element[0], &body, &len, &owned, why, sizeof(why)) != 0) {
		printf("body: (unreadable: %s)\n", why);
	} else {
		printf("body: ");
		fwrite(body, 1, len, stdout);
		printf("\n");
		free(owned);
	}
	freeReplyObject(r);
	return 0;
}

static int dlq_delete(struct consumer *c, int argc, char **argv, long long timeout_ms)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	const char *ids[DLQ_MAX_IDS];
	struct ops_args a = {.usage = delete_usage,
	                     .opts = opts,
	                     .pos = ids,
	                     .npos = DLQ_MAX_IDS,
	                     .timeout_ms = timeout_ms};
	long long deleted = 0, missing = 0;
	int code;

	if (parse_or_exit(argc, argv, &a, &code) != 0)
		return code;
	if (a.nposv == 0) {
		fprintf(stderr, "dlq delete: which dead letters? (dlq delete ID...)\n");
		return 2;
	}
	for (int i = 0; i < a.nposv; i++) {
		long long n = 0;
		int failed = 0;

		for (int k = 0; k < c->nshards && n == 0 && !failed; k++) { /* its shard */
			const char *del[] = {"XDEL", NULL, ids[i]};
			redisReply *r;

			consumer_select(c, k);
			del[1] = c->sh->dead;
			r = redisconn_cmdv(c->sh->redis, 3, del);
			if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
				fprintf(stderr, "dlq delete: %s: %s\n", ids[i],
				        r != NULL && r->type == REDIS_REPLY_ERROR ? r->str
				                                                  : "Redis failed");
				failed = 1;
			} else {
				n = r->integer;
			}
			freeReplyObject(r);
		}
		if (n == 0 && !failed)
			fprintf(stderr, "dlq delete: %s: no such dead letter\n", ids[i]);
		if (n > 0)
			deleted++;
		else
			missing++;
	}
	printf("deleted: %lld, not found: %lld\n", deleted, missing);
	return missing ? 1 : 0;
}

static int dlq_purge(struct consumer *c, int argc, char **argv, long long timeout_ms)
{
	const char *before = NULL;
	const struct ops_opt opts[] = {{"before", &before, NULL}, {NULL, NULL, NULL}};
	struct ops_args a = {.usage = purge_usage, .opts = opts, .timeout_ms = timeout_ms};
	char minid[32], t[40];
	int64_t ms;
	long long purged = 0;
	redisReply *r;
	int code;

	if (parse_or_exit(argc, argv, &a, &code) != 0)
		return code;
	if (before == NULL) {
		fprintf(stderr, "dlq purge: --before TIME is required\n");
		return 2;
	}
	if (ops_time_opt("dlq purge", "--before", before, &ms) != 0)
		return 2;
	snprintf(minid, sizeof(minid), "%lld-0", (long long)ms);
	for (int i = 0; i < c->nshards; i++) {
		const char *trim[] = {"XTRIM", NULL, "MINID", "=", minid};

		consumer_select(c, i);
		trim[1] = c->sh->dead;
		r = redisconn_cmdv(c->sh->redis, 5, trim);
		if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
			fprintf(stderr, "dlq purge: %s: %s\n", c->sh->dead,
			        r != NULL && r->type == REDIS_REPLY_ERROR ? r->str
			                                                  : "Redis failed");
			freeReplyObject(r);
			return 1;
		}
		purged += r->integer;
		freeReplyObject(r);
	}
	printf("purged: %lld dead letters from before %s\n", purged,
	       timefmt_iso_ms(ms, t, sizeof(t)));
	return 0;
}

/* A subcommand and its usage. */
static const struct {
	const char *name;
	const char *usage;
	int (*run)(struct consumer *c, int argc, char **argv, long long timeout_ms);
} subs[] = {
    {"list", list_usage, dlq_list},
    {"show", show_usage, dlq_show},
    {"delete", delete_usage, dlq_delete},
    {"purge", purge_usage, dlq_purge},
    {"redrive", dlqfix_redrive_usage, dlqfix_redrive},
    {"edit", dlqfix_edit_usage, dlqfix_edit},
};

/* The value of --timeout among a subcommand's words, parsed before connecting. Returns 0,
 * 1 after printing usage for --help, -1 after printing an error. */
static int pre_parse(int argc, char **argv, const char *usage, long long *timeout_ms)
{
	const char *ignored[DLQ_MAX_IDS];
	struct ops_args a = {.usage = usage, .pos = ignored, .npos = DLQ_MAX_IDS};
	struct ops_opt any[] = {{"reason", &ignored[0], NULL},
	                        {"since", &ignored[0], NULL},
	                        {"until", &ignored[0], NULL},
	                        {"limit", &ignored[0], NULL},
	                        {"before", &ignored[0], NULL},
	                        {"all", NULL, &(int){0}},
	                        {NULL, NULL, NULL}};
	int rc;

	a.opts = any;
	rc = ops_parse(argc, argv, &a);
	*timeout_ms = a.timeout_ms;
	return rc;
}

int ops_dlq(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	struct consumer c;
	long long timeout_ms;
	size_t i;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(dlq_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			break;
	if (i == sizeof(subs) / sizeof(subs[0])) {
		fprintf(stderr, "dlq: unknown subcommand \"%s\" (see dlq --help)\n", argv[1]);
		return 2;
	}
	/* --help and bad options answer before any connection is tried. */
	rc = pre_parse(argc - 1, argv + 1, subs[i].usage, &timeout_ms);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (ops_connect(&c, cfg, stop, "dlq", timeout_ms, false) != 0)
		return 1;
	rc = subs[i].run(&c, argc - 1, argv + 1, timeout_ms);
	consumer_close(&c);
	return rc;
}

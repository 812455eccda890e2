/* Putting dead letters back into the main stream: redrive and edit. */
#include "dlqfix.h"

#include "dlqsel.h"
#include "opscli.h"
#include "progress.h"
#include "stream.h"
#include "util.h"
#include "vapi_msg.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Most ids one redrive names. */
#define DLQFIX_MAX_IDS 1024
/* Largest body an edit reads back. */
#define DLQFIX_MAX_BODY (64LL << 20)

const char dlqfix_redrive_usage[] =
    "usage: switchboard-worker [settings] dlq redrive ID... | --all |\n"
    "       [--reason TEXT] [--since TIME] [--until TIME] [--limit N] [--timeout D]\n"
    "Appends each dead letter chosen to the main stream (with redriven_from) and deletes it,\n"
    "atomically; the workers file it again. One whose body still does not parse is left\n"
    "where it is (it would only fail again): fix it with dlq edit ID. Progress goes to\n"
    "stderr, the summary to stdout.\n"
    "  --all           every dead letter\n" DLQ_FILTER_HELP
    "  --limit N       at most N\n" OPS_TIMEOUT_HELP;

const char dlqfix_edit_usage[] =
    "usage: switchboard-worker [settings] dlq edit ID [--timeout D]\n"
    "Opens the body of dead letter ID in $VISUAL, else $EDITOR, else vi. When the editor\n"
    "exits 0 and the body changed, it must be JSON with message.type; it is then appended to\n"
    "the main stream as a new entry (with redriven_from ID and the original received_at,\n"
    "request_id and source), and only after that XADD is the dead letter removed. On any\n"
    "failure the dead letter stays and the edited file is kept (its path is "
    "printed).\n" OPS_TIMEOUT_HELP;

/* Whether a dead letter's body would parse now; why says what is wrong when not. */
static int body_parses(const redisReply *e, char *why, size_t whylen)
{
	const char *body;
	size_t len;
	char *owned;
	struct vapi_msg m;
	int ok;

	if (dlq_body(e, &body, &len, &owned, why, whylen) != 0)
		return 0;
	ok = vapi_msg_parse(body, len, &m, why, whylen) == 0;
	if (ok)
		vapi_msg_free(&m);
	free(owned);
	return ok;
}

/* Sends cmds (each argc/argv/lens) inside MULTI/EXEC. Returns 0 when EXEC ran them all
 * without an error; -1 otherwise (the reason in err). */
static int multi_exec(redisContext *rc, int n, const int *argc, const char **const *argv,
                      const size_t *const *lens, char *err, size_t errlen)
{
	redisReply *r;
	int ok = 1;

	redisAppendCommand(rc, "MULTI");
	for (int i = 0; i < n; i++)
		redisAppendCommandArgv(rc, argc[i], argv[i], lens[i]);
	redisAppendCommand(rc, "EXEC");
	for (int i = 0; i < n + 2; i++) {
		if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
			snprintf(err, errlen, "%s", rc->errstr);
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR && ok) {
			snprintf(err, errlen, "%s", r->str);
			ok = 0;
		}
		if (i == n + 1 && r->type != REDIS_REPLY_ARRAY && ok) {
			snprintf(err, errlen, "EXEC aborted");
			ok = 0;
		}
		freeReplyObject(r);
	}
	return ok ? 0 : -1;
}

/* Fields of a dead letter copied back into the main stream by a redrive. */
static const char *const redrive_fields[] = {STREAM_F_BODY, STREAM_F_RECEIVED_AT,
                                             STREAM_F_REQUEST_ID, STREAM_F_SOURCE, STREAM_F_ENC};
#define NREDRIVE (sizeof(redrive_fields) / sizeof(redrive_fields[0]))

/* Moves one dead letter back to the main stream and deletes it, atomically. */
static int redrive_one(struct consumer *c, const redisReply *e, char *err, size_t errlen)
{
	const char *add[3 + 2 * (NREDRIVE + 1)];
	size_t addl[3 + 2 * (NREDRIVE + 1)];
	const char *del[] = {"XDEL", c->sh->dead, e->element[0]->str};
	int n = 0;

	add[n] = "XADD", addl[n++] = 4;
	add[n] = c->sh->stream, addl[n++] = strlen(c->sh->stream);
	add[n] = "*", addl[n++] = 1;
	for (size_t i = 0; i < NREDRIVE; i++) {
		const redisReply *v = dlq_field(e, redrive_fields[i]);

		if (v == NULL || v->type != REDIS_REPLY_STRING)
			continue;
		add[n] = redrive_fields[i], addl[n++] = strlen(redrive_fields[i]);
		add[n] = v->str, addl[n++] = v->len;
	}
	add[n] = "redriven_from", addl[n++] = 13;
	add[n] = e->element[0]->str, addl[n++] = e->element[0]->len;
	return multi_exec(c->sh->redis, 2, (const int[]){n, 3}, (const char **const[]){add, del},
	                  (const size_t *const[]){addl, NULL}, err, errlen);
}

struct redrive {
	long long moved, kept, failed;
	struct progress pr;
};

static int redrive_visit(struct consumer *c, const redisReply *e, void *arg)
{
	struct redrive *rd = arg;
	char why[512];

	progress_add(&rd->pr, 1);
	if (!body_parses(e, why, sizeof(why))) {
		fprintf(stderr,
		        "dlq redrive: %s: body still malformed (%s); left in place: fix it "
		        "with dlq edit %s\n",
		        e->element[0]->str, why, e->element[0]->str);
		rd->kept++;
		return 0;
	}
	if (redrive_one(c, e, why, sizeof(why)) == 0) {
		rd->moved++;
		return 0;
	}
	fprintf(stderr, "dlq redrive: %s: %s\n", e->element[0]->str, why);
	rd->failed++;
	return c->sh->redis->err ? -1 : 0;
}

/* Redrives the dead letters named by id; stops when Redis fails. */
static void redrive_ids(struct consumer *c, const char **ids, int n, struct redrive *rd)
{
	for (int i = 0; i < n; i++) {
		int redis_failed;
		redisReply *r = dlq_get(c, ids[i], &redis_failed);

		if (r == NULL) {
			fprintf(stderr, "dlq redrive: %s: %s\n", ids[i],
			        redis_failed ? "Redis failed" : "no such dead letter");
			rd->failed++;
			if (redis_failed)
				return;
			continue;
		}
		if (redrive_visit(c, r->element[0], rd) < 0) {
			freeReplyObject(r);
			return;
		}
		freeReplyObject(r);
	}
}

int dlqfix_redrive(struct consumer *c, int argc, char **argv, long long timeout_ms)
{
	const char *reason = NULL, *since = NULL, *until = NULL, *limit = NULL,
	           *ids[DLQFIX_MAX_IDS];
	int all = 0, rc;
	const struct ops_opt opts[] = {{"all", NULL, &all},     {"reason", &reason, NULL},
	                               {"since", &since, NULL}, {"until", &until, NULL},
	                               {"limit", &limit, NULL}, {NULL, NULL, NULL}};
	struct ops_args a = {.usage = dlqfix_redrive_usage,
	                     .opts = opts,
	                     .pos = ids,
	                     .npos = DLQFIX_MAX_IDS,
	                     .timeout_ms = timeout_ms};
	int filtered;
	struct dlq_filter f;
	struct redrive rd = {0};

	if ((rc = ops_parse(argc, argv, &a)) != 0)
		return rc > 0 ? 0 : 2;
	filtered = reason != NULL || since != NULL || until != NULL || limit != NULL;
	if ((a.nposv > 0) + all + filtered != 1) {
		fprintf(stderr, "dlq redrive: name IDs, or --all, or filters (--reason, --since, "
		                "--until, --limit), one of the three (see dlq redrive --help)\n");
		return 2;
	}
	if (dlq_filter_parse("dlq redrive", reason, since, until, limit, &f) != 0)
		return 2;
	progress_start(&rd.pr, stderr, "redrive", "dead letters", a.nposv > 0 ? a.nposv : -1);
	if (a.nposv > 0)
		redrive_ids(c, ids, a.nposv, &rd);
	else if (dlq_each(c, &f, redrive_visit, &rd) < 0)
		rd.failed++;
	progress_end(&rd.pr);
	printf("redriven: %lld, left malformed: %lld, failed: %lld\n", rd.moved, rd.kept,
	       rd.failed);
	return rd.failed || rd.kept ? 1 : 0;
}

/* --- edit -------------------------------------------------------------------------------- */

/* Writes len bytes to a new file in $TMPDIR; its path goes to path. Returns 0 or -1 (why). */
static int write_temp(const char *body, size_t len, char *path, size_t size, char *why,
                      size_t whylen)
{
	const char *dir = getenv("TMPDIR");
	FILE *fp;
	int fd;

	snprintf(path, size, "%s/switchboard-dlq-XXXXXX.json", dir != NULL && *dir ? dir : "/tmp");
	fd = mkstemps(path, 5);
	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		snprintf(why, whylen, "cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fwrite(body, 1, len, fp) != len || fclose(fp) != 0) {
		snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Runs $VISUAL, else $EDITOR, else vi on path (through sh, so that "code --wait" works).
 * Returns 0 when it exited 0; -1 with why. */
static int run_editor(const char *path, char *why, size_t whylen)
{
	int st;
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exec ${VISUAL:-${EDITOR:-vi}} \"$1\"", "sh", path,
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, whylen, "waitpid: %s", strerror(errno));
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	snprintf(why, whylen, "the editor %s %d",
	         WIFEXITED(st) ? "exited with status" : "died of signal",
	         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return -1;
}

/* Reads path back into a new buffer (*out, free it), without trailing newlines. */
static int read_back(const char *path, char **out, size_t *len, char *why, size_t whylen)
{
	FILE *fp = fopen(path, "rb");
	size_t cap = 65536, n = 0, got;
	char *buf = NULL, *bigger;

	if (fp == NULL) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	do {
		if ((bigger = realloc(buf, cap + 1)) == NULL)
			break;
		buf = bigger;
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
		if (n == cap)
			cap *= 2;
	} while (got > 0 && cap <= (size_t)DLQFIX_MAX_BODY);
	if (bigger == NULL || ferror(fp) || cap > (size_t)DLQFIX_MAX_BODY) {
		snprintf(why, whylen, "cannot read %s (or larger than 64 MiB)", path);
		fclose(fp);
		free(buf);
		return -1;
	}
	fclose(fp);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* The edited body must be JSON and a message the workers can file. */
static int check_body(const char *body, size_t len, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, 0, &jerr);
	struct vapi_msg m;

	if (doc == NULL) {
		snprintf(why, whylen, "not JSON: line %d, column %d: %s", jerr.line, jerr.column,
		         jerr.text);
		return -1;
	}
	json_decref(doc);
	if (vapi_msg_parse(body, len, &m, why, whylen) != 0)
		return -1;
	vapi_msg_free(&m);
	return 0;
}

/* XADDs the edited body to the main stream with the dead letter's other fields and
 * redriven_from; then XDELs the dead letter. Prints what happened. Returns the exit code. */
static int requeue(struct consumer *c, const redisReply *e, const char *body, size_t len)
{
	const char *id = e->element[0]->str, *argv[STREAM_XADD_ARGS + 2];
	const char *del[] = {"XDEL", c->sh->dead, id};
	size_t lens[STREAM_XADD_ARGS + 2];
	long long recv = 0;
	char recv_s[24];
	struct stream_new ne = {.body = body, .body_len = len};
	redisReply *r;
	int n, rc = 1;

	if (util_parse_ll(dlq_field_str(e, STREAM_F_RECEIVED_AT), &recv) != 0)
		recv = 0;
	ne.received_at = recv;
	ne.request_id =
	    *dlq_field_str(e, STREAM_F_REQUEST_ID) ? dlq_field_str(e, STREAM_F_REQUEST_ID) : NULL;
	ne.source = *dlq_field_str(e, STREAM_F_SOURCE) ? dlq_field_str(e, STREAM_F_SOURCE) : "http";
	n = stream_xadd_argv(c->sh->stream, &ne, argv, lens, recv_s);
	argv[n] = "redriven_from", lens[n++] = 13;
	argv[n] = id, lens[n++] = strlen(id);
	r = redisconn_cmd(c->sh->redis, n, argv, lens);
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dlq edit: XADD to %s failed (%s); dead letter %s kept\n",
		        c->sh->stream,
		        r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "Redis failed", id);
		freeReplyObject(r);
		return 1;
	}
	printf("re-queued %s as %s in %s (redriven_from %s)\n", id, r->str, c->sh->stream, id);
	freeReplyObject(r);
	r = redisconn_cmdv(c->sh->redis, 3, del);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
		printf("removed dead letter %s\n", id);
		rc = 0;
	} else {
		fprintf(stderr,
		        "dlq edit: the entry is re-queued but removing dead letter %s failed; "
		        "remove it with dlq delete %s\n",
		        id, id);
	}
	freeReplyObject(r);
	return rc;
}

/* Edits the body of dead letter e and re-queues it. Returns the exit code. */
static int edit_entry(struct consumer *c, const redisReply *e)
{
	const char *orig;
	char path[512], why[1024], *owned = NULL, *edited = NULL;
	size_t orig_len, len;
	int rc = 1;

	if (dlq_body(e, &orig, &orig_len, &owned, why, sizeof(why)) != 0) {
		/* Undecodable: edit the stored bytes (dlq show says why they are unreadable). */
		const redisReply *b = dlq_field(e, STREAM_F_BODY);

		orig = b != NULL && b->type == REDIS_REPLY_STRING ? b->str : "";
		orig_len = b != NULL && b->type == REDIS_REPLY_STRING ? b->len : 0;
	}
	if (write_temp(orig, orig_len, path, sizeof(path), why, sizeof(why)) != 0) {
		fprintf(stderr, "dlq edit: %s\n", why);
		free(owned);
		return 1;
	}
	if (run_editor(path, why, sizeof(why)) != 0 ||
	    read_back(path, &edited, &len, why, sizeof(why)) != 0) {
		fprintf(stderr, "dlq edit: %s; dead letter kept, the edit is in %s\n", why, path);
	} else if (len == orig_len && memcmp(edited, orig, len) == 0) {
		printf("dlq edit: body unchanged; nothing re-queued, dead letter kept\n");
		unlink(path);
		rc = 0;
	} else if (check_body(edited, len, why, sizeof(why)) != 0) {
		fprintf(stderr,
		        "dlq edit: the edited body is refused (%s); dead letter kept, the "
		        "edit is in %s (dlq edit again and paste it)\n",
		        why, path);
	} else if ((rc = requeue(c, e, edited, len)) == 0) {
		unlink(path);
	} else {
		fprintf(stderr, "dlq edit: the edit is in %s\n", path);
	}
	free(edited);
	free(owned);
	return rc;
}

int dlqfix_edit(struct consumer *c, int argc, char **argv, long long timeout_ms)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	const char *id[1];
	struct ops_args a = {.usage = dlqfix_edit_usage,
	                     .opts = opts,
	                     .pos = id,
	                     .npos = 1,
	                     .timeout_ms = timeout_ms};
	redisReply *r;
	int rc, redis_failed;

	if ((rc = ops_parse(argc, argv, &a)) != 0)
		return rc > 0 ? 0 : 2;
	if (a.nposv != 1) {
		fprintf(stderr, "dlq edit: which dead letter? (dlq edit ID)\n");
		return 2;
	}
	r = dlq_get(c, id[0], &redis_failed);
	if (r == NULL) {
		fprintf(stderr, "dlq edit: %s: %s\n", id[0],
		        redis_failed ? "Redis failed" : "no such dead letter");
		return 1;
	}
	rc = edit_entry(c, r->element[0]);
	freeReplyObject(r);
	return rc;
}

/* PostgreSQL writes: routing look-ups, call upserts, events and parked messages. */
#include "sink.h"

#include "calls_row.h"
#include "orgcache.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Routing facts cached per connection: enough for every phone number, assistant and
 * organization a few batches touch. */
#define SINK_CACHE_SLOTS 8192

struct sink {
	PGconn *conn;
	struct orgcache *cache; /* routing facts of recent batches */
	int piped;              /* in pipeline mode: run() sends without waiting */
	size_t pending;         /* commands sent in pipeline mode whose results are unread */
};

struct stmt {
	const char *name;
	const char *sql;
	int nparams;
};

enum {
	ST_FACTS,
	ST_INSERT_UNROUTED,
	ST_PARKED_PAGE,
	ST_UNPARK,
	ST_PARKED_STATS,
	ST_EVENT_MAINTAIN
};

static const struct stmt stmts[] = {
    [ST_FACTS] = {"sb_facts",
                  "SELECT (SELECT organization_id FROM phone_numbers WHERE provider_phone_id = $1),"
                  " EXISTS (SELECT 1 FROM organizations WHERE id = $2),"
                  " (SELECT organization_id FROM assistants WHERE provider_assistant_id = $3)",
                  3},
    [ST_INSERT_UNROUTED] = {"sb_insert_unrouted",
                            "INSERT INTO unrouted_messages (stream_id, vapi_call_id, type, reason,"
                            " body, received_at)"
                            " VALUES ($1, $2, $3, $4, $5, to_timestamp($6::float8 / 1000))"
                            " ON CONFLICT (stream_id) DO NOTHING",
                            6},
    [ST_PARKED_PAGE] = {"sb_parked_page",
                        "SELECT id, stream_id, body,"
                        " (extract(epoch FROM received_at) * 1000)::bigint"
                        " FROM unrouted_messages WHERE id > $1 ORDER BY id LIMIT $2"
                        " FOR UPDATE SKIP LOCKED",
                        2},
    [ST_UNPARK] = {"sb_unpark", "DELETE FROM unrouted_messages WHERE id = $1", 1},
    [ST_PARKED_STATS] = {"sb_parked_stats",
                         "SELECT count(*),"
                         " COALESCE(extract(epoch FROM now() - min(created_at)), 0)::bigint"
                         " FROM unrouted_messages",
                         0},
    [ST_EVENT_MAINTAIN] = {"sb_event_maintain",
                           "SELECT created, dropped FROM switchboard_event_maintain($1::int,"
                           " $2::bigint * interval '1 millisecond')",
                           2},
};

#define NSTMTS (sizeof(stmts) / sizeof(stmts[0]))

/* Copies a one-line form of PQ's error text into err. */
static void pg_err(char *err, size_t errlen, const char *what, const char *text)
{
	snprintf(err, errlen, "%s: %s", what, text != NULL && *text ? text : "unknown error");
	for (char *p = err; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
}

/* The reason a command failed: its result's message, or the connection's when there is no
 * result (libpq returns NULL when the connection is gone: "re-route: BEGIN: unknown error"
 * hid the real text). */
static const char *result_error(PGconn *conn, const PGresult *r)
{
	const char *m = r != NULL ? PQresultErrorMessage(r) : "";

	return *m != '\0' ? m : PQerrorMessage(conn);
}

static enum sink_status classify(PGconn *conn, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(conn) != CONNECTION_OK || state == NULL)
		return SINK_CONN;
	/* Connection lost, server shutting down, out of resources (disk, connections): all pass
	 * with time and none is the message's fault. */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0)
		return SINK_CONN;
	/* Serialization failure, deadlock, and a statement cancelled (statement_timeout). */
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "57014") == 0)
		return SINK_RETRY;
	return SINK_DATA;
}

struct sink *sink_open(const char *conninfo, char *err, size_t errlen)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cache = orgcache_new(SINK_CACHE_SLOTS);
	s->conn = PQconnectdb(conninfo);
	if (s->cache == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		pg_err(err, errlen, "connect", PQerrorMessage(s->conn));
		goto fail;
	}
	for (size_t i = 0; i < NSTMTS; i++) {
		PGresult *r =
		    PQprepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);

		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_err(err, errlen, stmts[i].name, PQerrorMessage(s->conn));
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	return s;
fail:
	sink_close(s);
	return NULL;
}

void sink_close(struct sink *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	orgcache_free(s->cache);
	free(s);
}

/* Runs a statement; returns SINK_OK or the classified failure with err set. When out is
 * non-NULL the (tuples) result is handed over; free it with PQclear. */
static enum sink_status run(struct sink *s, int st, const char *const *params, PGresult **out,
                            char *err, size_t errlen)
{
	if (s->piped) {
		/* The parameters are copied into the send buffer here; the result is read later,
		 * in order, by take(). */
		if (!PQsendQueryPrepared(s->conn, stmts[st].name, stmts[st].nparams, params, NULL,
		                         NULL, 0)) {
			pg_err(err, errlen, stmts[st].name, PQerrorMessage(s->conn));
			return SINK_CONN;
		}
		s->pending++;
		return SINK_OK;
	}
	PGresult *r =
	    PQexecPrepared(s->conn, stmts[st].name, stmts[st].nparams, params, NULL, NULL, 0);
	ExecStatusType t = PQresultStatus(r);
	enum sink_status rc = SINK_OK;

	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
		pg_err(err, errlen, stmts[st].name, result_error(s->conn, r));
		rc = classify(s->conn, r);
		PQclear(r);
		return rc;
	}
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return rc;
}

static enum sink_status simple(struct sink *s, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(s->conn, sql);
	enum sink_status rc = SINK_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_err(err, errlen, sql, result_error(s->conn, r));
		rc = classify(s->conn, r);
	}
	PQclear(r);
	return rc;
}

static enum sink_status park(struct sink *s, struct sink_item *it, char *err, size_t errlen)
{
	char recv[24];
	const char *p[6] = {it->entry.id, it->msg.call_id,
	                    it->msg.type, it->reason,
	                    it->body,     util_ms_text(it->entry.received_at, recv, sizeof(recv))};

	it->unrouted = true;
	return run(s, ST_INSERT_UNROUTED, p, NULL, err, errlen);
}

/* The parameters of one call_events row. */
#define EVENT_NPARAMS 11

/* Statements of many rows stay under PostgreSQL's 65,535 parameters. */
#define SINK_MAX_CALL_ROWS (65535 / CALLS_NPARAMS)
#define SINK_MAX_EVENT_ROWS (65535 / EVENT_NPARAMS)

/* A message routed to an organization, to be filed. */
struct filing {
	struct sink_item *it;
	const char *org;      /* borrowed from the routing facts */
	enum route_rule rule; /* which rule routed it */
};

/* One call_events row: its parameters and the text they point to. */
struct event_row {
	const char *v[EVENT_NPARAMS];
	char ts[24], recv[24], key[64];
};

static void event_fill(struct event_row *e, const struct filing *f)
{
	const struct vapi_msg *m = &f->it->msg;
	const struct stream_entry *en = &f->it->entry;

	e->v[0] = m->call_id;
	e->v[1] = f->org;
	e->v[2] = m->type;
	e->v[3] = m->status;
	e->v[4] = vapi_msg_dedupe_key(m, en->id, e->key, sizeof(e->key));
	e->v[5] = en->id;
	e->v[6] = en->source;
	e->v[7] = util_ms_text(m->timestamp_ms, e->ts, sizeof(e->ts));
	e->v[8] = util_ms_text(en->received_at, e->recv, sizeof(e->recv));
	e->v[9] = m->is_report ? NULL : f->it->body; /* a report is in calls.report */
	e->v[10] = en->request_id;
}

/* Writes the VALUES tuple of one event whose parameters follow p (after ", " unless
 * first). Returns its length, as snprintf does. */
static int event_tuple(char *buf, size_t size, int comma, int p)
{
	return snprintf(buf, size,
	                "%s($%d::text, $%d::text, $%d::text, $%d::text, $%d::text, $%d::text,"
	                " $%d::text, to_timestamp($%d::float8 / 1000),"
	                " to_timestamp($%d::float8 / 1000), ($%d::jsonb) -> 'message', $%d::text)",
	                comma ? ", " : "", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8,
	                p + 9, p + 10, p + 11);
}

/* The insert of rows call_events rows in one statement. A repeat is skipped by the unique
 * key within this month's partition, and by the subquery below when its first copy is in
 * the previous month's (0004_partition_events); repeats within the statement by the former.
 * Returns a new string (free it), or NULL when out of memory. */
static char *events_sql(int rows)
{
	static const char head[] =
	    "INSERT INTO call_events (vapi_call_id, organization_id, type, status, dedupe_key,"
	    " stream_id, source, occurred_at, received_at, payload, request_id)"
	    " SELECT v.* FROM (VALUES ";
	static const char tail[] =
	    ") AS v (vapi_call_id, organization_id, type, status, dedupe_key, stream_id, source,"
	    " occurred_at, received_at, payload, request_id)"
	    /* A scalar subquery with LIMIT, which cannot become a join: one probe of each
	     * partition's unique index per row (EXPLAIN: an index-only scan per partition). */
	    " WHERE (SELECT 1 FROM call_events e WHERE e.vapi_call_id = v.vapi_call_id"
	    " AND e.type = v.type AND e.dedupe_key = v.dedupe_key"
	    " AND e.part_month >= (date_trunc('month', now() AT TIME ZONE 'UTC')"
	    " - interval '1 month')::date LIMIT 1) IS NULL"
	    " ON CONFLICT (vapi_call_id, type, dedupe_key, part_month) DO NOTHING";
	size_t size, off;
	char *sql;

	/* No tuple is longer than the last one, with the largest numbers. */
	size = sizeof(head) + sizeof(tail) +
	       (size_t)rows * ((size_t)event_tuple(NULL, 0, 1, (rows - 1) * EVENT_NPARAMS) + 1);
	sql = malloc(size);
	if (sql == NULL)
		return NULL;
	off = (size_t)snprintf(sql, size, "%s", head);
	for (int i = 0; i < rows; i++)
		off += (size_t)event_tuple(sql + off, size - off, i > 0, i * EVENT_NPARAMS);
	snprintf(sql + off, size - off, "%s", tail);
	return sql;
}

/* Sends (pipelined) or runs one statement of n text parameters. */
static enum sink_status run_sql(struct sink *s, const char *what, const char *sql, int n,
                                const char *const *params, char *err, size_t errlen)
{
	PGresult *r;
	enum sink_status rc = SINK_OK;

	if (s->piped) {
		if (!PQsendQueryParams(s->conn, sql, n, NULL, params, NULL, NULL, 0)) {
			pg_err(err, errlen, what, PQerrorMessage(s->conn));
			return SINK_CONN;
		}
		s->pending++;
		return SINK_OK;
	}
	r = PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_err(err, errlen, what, result_error(s->conn, r));
		rc = classify(s->conn, r);
	}
	PQclear(r);
	return rc;
}

/* Order of filings by call id, then as given. */
static int filing_cmp(const void *a, const void *b)
{
	const struct filing *x = *(const struct filing *const *)a;
	const struct filing *y = *(const struct filing *const *)b;
	int c = strcmp(x->it->msg.call_id, y->it->msg.call_id);

	return c != 0 ? c : (x < y ? -1 : x > y);
}

/* Sends the upserts of rows[0..k) in one statement. */
static enum sink_status upsert_rows(struct sink *s, struct calls_row *rows, size_t k, char *err,
                                    size_t errlen)
{
	const char **params = malloc(k * CALLS_NPARAMS * sizeof(*params));
	char *sql = calls_row_upsert_sql((int)k);
	enum sink_status rc = SINK_CONN;

	if (params != NULL && sql != NULL) {
		for (size_t i = 0; i < k; i++)
			memcpy(params + i * CALLS_NPARAMS, rows[i].v, sizeof(rows[i].v));
		rc = run_sql(s, "upsert calls", sql, (int)(k * CALLS_NPARAMS), params, err, errlen);
	} else {
		snprintf(err, errlen, "out of memory");
	}
	free(params);
	free(sql);
	return rc;
}

/* The calls upserts of the filings, as few statements as the rule allows: one row per call
 * in a statement (ON CONFLICT DO UPDATE cannot touch a row twice), so a call's second
 * message of the batch goes in a second statement, and so on. The merge does not depend on
 * which goes first. */
static enum sink_status upsert_calls(struct sink *s, struct filing *f, size_t nf, char *err,
                                     size_t errlen)
{
	struct filing **order = malloc(nf * sizeof(*order));
	struct calls_row *rows = malloc(nf * sizeof(*rows));
	size_t *round = malloc(nf * sizeof(*round)), left = nf;
	enum sink_status rc = SINK_OK;

	if (order == NULL || rows == NULL || round == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = SINK_CONN;
		goto out;
	}
	for (size_t i = 0; i < nf; i++)
		order[i] = &f[i];
	qsort(order, nf, sizeof(*order), filing_cmp);
	for (size_t i = 0; i < nf; i++)
		round[i] =
		    i > 0 && strcmp(order[i]->it->msg.call_id, order[i - 1]->it->msg.call_id) == 0
		        ? round[i - 1] + 1
		        : 0;
	for (size_t r = 0; rc == SINK_OK && left > 0; r++) {
		size_t k = 0;

		for (size_t i = 0; rc == SINK_OK && i < nf; i++) {
			if (round[i] != r)
				continue;
			calls_row_fill(&rows[k++], &order[i]->it->msg, order[i]->org,
			               route_rule_name(order[i]->rule), order[i]->it->body);
			left--;
			if (k == SINK_MAX_CALL_ROWS) {
				rc = upsert_rows(s, rows, k, err, errlen);
				k = 0;
			}
		}
		if (rc == SINK_OK && k > 0)
			rc = upsert_rows(s, rows, k, err, errlen);
	}
out:
	free(order);
	free(rows);
	free(round);
	return rc;
}

/* The call_events rows of the filings, SINK_MAX_EVENT_ROWS to a statement. */
static enum sink_status insert_events(struct sink *s, const struct filing *f, size_t nf, char *err,
                                      size_t errlen)
{
	enum sink_status rc = SINK_OK;

	for (size_t first = 0; rc == SINK_OK && first < nf; first += SINK_MAX_EVENT_ROWS) {
		size_t k = nf - first < SINK_MAX_EVENT_ROWS ? nf - first : SINK_MAX_EVENT_ROWS;
		struct event_row *rows = malloc(k * sizeof(*rows));
		const char **params = malloc(k * EVENT_NPARAMS * sizeof(*params));
		char *sql = events_sql((int)k);

		rc = SINK_CONN;
		if (rows != NULL && params != NULL && sql != NULL) {
			for (size_t i = 0; i < k; i++) {
				event_fill(&rows[i], &f[first + i]);
				memcpy(params + i * EVENT_NPARAMS, rows[i].v, sizeof(rows[i].v));
			}
			rc = run_sql(s, "insert events", sql, (int)(k * EVENT_NPARAMS), params, err,
			             errlen);
		} else {
			snprintf(err, errlen, "out of memory");
		}
		free(rows);
		free(params);
		free(sql);
	}
	return rc;
}

/* Files the routed messages: their calls rows, then their events (libpq copies the
 * parameters when sending, so nothing here must outlive the call). */
static enum sink_status file_all(struct sink *s, struct filing *f, size_t nf, char *err,
                                 size_t errlen)
{
	enum sink_status rc;

	if (nf == 0)
		return SINK_OK;
	rc = upsert_calls(s, f, nf, err, errlen);
	if (rc == SINK_OK)
		rc = insert_events(s, f, nf, err, errlen);
	for (size_t i = 0; rc == SINK_OK && i < nf; i++)
		if (f[i].it->parked_id != NULL)
			rc = run(s, ST_UNPARK, &f[i].it->parked_id, NULL, err, errlen);
	return rc;
}

static const char *cell(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col);
}

/* The facts in a look-up's result (strings borrowed from it). */
static void facts_of(const PGresult *res, struct route_facts *f)
{
	f->phone_org = cell(res, 0);
	f->meta_org_exists = cell(res, 1) != NULL && cell(res, 1)[0] == 't';
	f->assistant_org = cell(res, 2);
}

/* Routes m by the facts looked up for it (rr's organization borrows from facts). */
static void route_by(const PGresult *facts, const struct vapi_msg *m, struct route_result *rr)
{
	struct route_facts f;

	facts_of(facts, &f);
	route_resolve(m, &f, rr);
}

/* Sends (or runs) the routing look-up of m. */
static enum sink_status look_up(struct sink *s, const struct vapi_msg *m, PGresult **res, char *err,
                                size_t errlen)
{
	const char *p[3] = {m->phone_number_id, m->meta_org_id, m->assistant_id};

	return run(s, ST_FACTS, p, res, err, errlen);
}

/* Looks up the routing facts of m and routes it. On SINK_OK, *res holds the look-up (the
 * organization id borrows from it): free it with PQclear. */
static enum sink_status resolve(struct sink *s, const struct vapi_msg *m, struct route_result *rr,
                                PGresult **res, char *err, size_t errlen)
{
	enum sink_status rc = look_up(s, m, res, err, errlen);

	if (rc == SINK_OK)
		route_by(*res, m, rr);
	return rc;
}

/* Parks one routed message that has no organization or no call id; adds the others to the
 * filings (f, *nf). */
static enum sink_status act(struct sink *s, struct sink_item *it, const struct route_result *rr,
                            struct filing *f, size_t *nf, char *err, size_t errlen)
{
	if (rr->org_id == NULL) {
		snprintf(it->reason, sizeof(it->reason), "%s", rr->reason);
		return park(s, it, err, errlen);
	}
	if (it->msg.call_id == NULL) {
		snprintf(it->reason, sizeof(it->reason), "message has no call.id");
		return park(s, it, err, errlen);
	}
	f[(*nf)++] = (struct filing){it, rr->org_id, rr->rule};
	return SINK_OK;
}

/* Routes, then files or parks one message (one round trip per statement). */
static enum sink_status store(struct sink *s, struct sink_item *it, char *err, size_t errlen)
{
	struct route_result rr;
	struct filing f;
	size_t nf = 0;
	PGresult *r = NULL;
	enum sink_status rc = resolve(s, &it->msg, &rr, &r, err, errlen);

	if (rc == SINK_OK)
		rc = act(s, it, &rr, &f, &nf, err, errlen);
	if (rc == SINK_OK)
		rc = file_all(s, &f, nf, err, errlen);
	PQclear(r);
	return rc;
}

enum sink_status sink_route(struct sink *s, const struct vapi_msg *m, char *org, size_t size,
                            char *err, size_t errlen)
{
	struct route_result rr;
	PGresult *r = NULL;
	enum sink_status rc = resolve(s, m, &rr, &r, err, errlen);

	if (rc != SINK_OK)
		return rc;
	snprintf(org, size, "%s", rr.org_id != NULL ? rr.org_id : "");
	PQclear(r);
	return SINK_OK;
}

/* The routing facts of one item of a batch: from the cache, or from its look-up. */
struct item_facts {
	PGresult *res;        /* the look-up's result, when one was sent */
	struct route_facts f; /* borrowed from res, or copied from the cache */
	int cached;           /* f came from the cache (its strings are owned) */
	int sent;             /* its look-up was sent: a result is due */
};

/* Pipeline bookkeeping: the first failure wins; later results are only drained. */
struct pipe {
	struct sink *s;
	enum sink_status rc;
	char *err;
	size_t errlen;
};

/* Reads the result of the next command sent. Returns it (free with PQclear), or NULL when
 * that command failed or was skipped after an earlier failure. */
static PGresult *take(struct pipe *p)
{
	PGresult *r, *end;
	ExecStatusType t;

	if (p->s->pending == 0)
		return NULL; /* nothing was sent that has not been read */
	r = PQgetResult(p->s->conn);
	t = PQresultStatus(r);
	p->s->pending--;
	if (r == NULL) {
		if (p->rc == SINK_OK) {
			pg_err(p->err, p->errlen, "pipeline", PQerrorMessage(p->s->conn));
			p->rc = SINK_CONN;
		}
		return NULL;
	}
	end = PQgetResult(p->s->conn); /* the NULL that ends each command's results */
	PQclear(end);
	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
		return r;
	if (p->rc == SINK_OK && t != PGRES_PIPELINE_ABORTED) {
		pg_err(p->err, p->errlen, "batch", PQresultErrorMessage(r));
		p->rc = classify(p->s->conn, r);
	}
	PQclear(r);
	return NULL;
}

/* Marks the end of what was sent and reads every result up to it (keeping the look-ups
 * that were sent in facts when facts is not NULL). Only what was sent is read: a send that
 * failed midway leaves the rest unsent. */
static void sync_and_read(struct pipe *p, size_t n, struct item_facts *facts)
{
	PGresult *r;

	if (!PQpipelineSync(p->s->conn)) {
		if (p->rc == SINK_OK) {
			pg_err(p->err, p->errlen, "pipeline sync", PQerrorMessage(p->s->conn));
			p->rc = SINK_CONN;
		}
		return; /* the connection is gone: there is nothing to read */
	}
	if (facts != NULL) {
		PQclear(take(p)); /* BEGIN */
		for (size_t i = 0; i < n; i++)
			if (facts[i].sent)
				facts[i].res = take(p);
	}
	while (p->s->pending > 0)
		PQclear(take(p));
	r = PQgetResult(p->s->conn);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && p->rc == SINK_OK) {
		pg_err(p->err, p->errlen, "pipeline sync", PQerrorMessage(p->s->conn));
		p->rc = SINK_CONN;
	}
	PQclear(r);
}

static enum sink_status send_sql(struct sink *s, const char *sql, char *err, size_t errlen)
{
	if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0)) {
		pg_err(err, errlen, sql, PQerrorMessage(s->conn));
		return SINK_CONN;
	}
	s->pending++;
	return SINK_OK;
}

static bool live(const struct sink_item *it)
{
	return !it->dead && !it->skip;
}

/* Phase one: BEGIN and the routing look-ups the cache cannot answer. */
static void look_up_all(struct pipe *p, struct sink_item **items, size_t n,
                        struct item_facts *facts, int64_t now)
{
	struct sink *s = p->s;

	p->rc = send_sql(s, "BEGIN", p->err, p->errlen);
	for (size_t i = 0; p->rc == SINK_OK && i < n; i++) {
		const struct vapi_msg *m = &items[i]->msg;

		if (!live(items[i]))
			continue;
		facts[i].cached = orgcache_get(s->cache, m->phone_number_id, m->meta_org_id,
		                               m->assistant_id, now, &facts[i].f);
		if (!facts[i].cached) {
			p->rc = look_up(s, m, NULL, p->err, p->errlen);
			facts[i].sent = p->rc == SINK_OK;
		}
	}
	sync_and_read(p, n, facts);
	for (size_t i = 0; p->rc == SINK_OK && i < n; i++) {
		const struct vapi_msg *m = &items[i]->msg;

		if (!live(items[i]) || facts[i].cached)
			continue;
		facts_of(facts[i].res, &facts[i].f);
		orgcache_put(s->cache, m->phone_number_id, m->meta_org_id, m->assistant_id,
		             &facts[i].f, now);
	}
}

/* Two pipelined round trips for the whole batch: BEGIN and the routing look-ups; then the
 * parked messages, the calls upserts (one statement per call's nth message), the events
 * (one statement) and COMMIT. */
static void write_piped(struct pipe *p, struct sink_item **items, size_t n,
                        struct item_facts *facts, struct filing *f)
{
	struct sink *s = p->s;
	size_t nf = 0;

	look_up_all(p, items, n, facts, util_mono_ms());
	for (size_t i = 0; p->rc == SINK_OK && i < n; i++) {
		struct route_result rr;

		if (!live(items[i]))
			continue;
		items[i]->unrouted = false;
		route_resolve(&items[i]->msg, &facts[i].f, &rr);
		p->rc = act(s, items[i], &rr, f, &nf, p->err, p->errlen);
	}
	if (p->rc == SINK_OK)
		p->rc = file_all(s, f, nf, p->err, p->errlen);
	if (p->rc == SINK_OK)
		p->rc = send_sql(s, "COMMIT", p->err, p->errlen);
	if (s->pending > 0)
		sync_and_read(p, n, NULL);
}

enum sink_status sink_write(struct sink *s, struct sink_item **items, size_t n, char *err,
                            size_t errlen)
{
	struct pipe p = {s, SINK_OK, err, errlen};
	struct item_facts *facts = calloc(n, sizeof(*facts));
	struct filing *f = calloc(n, sizeof(*f));

	if (facts == NULL || f == NULL || PQenterPipelineMode(s->conn) != 1) {
		pg_err(err, errlen, "pipeline",
		       facts && f ? PQerrorMessage(s->conn) : "out of memory");
		free(facts);
		free(f);
		return SINK_CONN;
	}
	s->piped = 1;
	s->pending = 0;
	write_piped(&p, items, n, facts, f);
	free(f);
	for (size_t i = 0; i < n; i++) {
		PQclear(facts[i].res);
		if (facts[i].cached)
			orgcache_facts_free(&facts[i].f);
	}
	free(facts);
	s->piped = 0;
	if (!PQexitPipelineMode(s->conn) && p.rc == SINK_OK) {
		pg_err(err, errlen, "pipeline exit", PQerrorMessage(s->conn));
		p.rc = SINK_CONN;
	}
	if (p.rc != SINK_OK && PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return p.rc;
}

/* Re-routes one page of parked messages after id *after in one transaction. */
static enum sink_status reroute_page(struct sink *s, long long limit, char *after, long long *filed,
                                     long long *left, long long *rows, char *err, size_t errlen)
{
	char lim[24];
	const char *p[2] = {after, lim};
	PGresult *r = NULL;
	enum sink_status rc = simple(s, "BEGIN", err, errlen);

	snprintf(lim, sizeof(lim), "%lld", limit);
	if (rc == SINK_OK)
		rc = run(s, ST_PARKED_PAGE, p, &r, err, errlen);
	*rows = rc == SINK_OK ? PQntuples(r) : 0;
	for (int i = 0; rc == SINK_OK && i < *rows; i++) {
		struct sink_item it;
		char why[256];

		memset(&it, 0, sizeof(it));
		it.parked_id = PQgetvalue(r, i, 0);
		snprintf(it.entry.id, sizeof(it.entry.id), "%s", PQgetvalue(r, i, 1));
		it.body = PQgetvalue(r, i, 2);
		it.body_len = (size_t)PQgetlength(r, i, 2);
		it.entry.received_at = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		it.entry.source = "reroute";
		snprintf(after, 24, "%s", it.parked_id);
		if (vapi_msg_parse(it.body, it.body_len, &it.msg, why, sizeof(why)) != 0)
			continue; /* parked bodies were parsed once; keep any that no longer parse
			           */
		rc = store(s, &it, err, errlen);
		*filed += !it.unrouted;
		*left += it.unrouted;
		vapi_msg_free(&it.msg);
	}
	PQclear(r);
	if (rc == SINK_OK)
		rc = simple(s, "COMMIT", err, errlen);
	if (rc != SINK_OK && PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return rc;
}

enum sink_status sink_reroute(struct sink *s, long long limit, long long *filed, long long *left,
                              char *err, size_t errlen)
{
	char after[24] = "0";
	long long rows;
	enum sink_status rc;

	*filed = *left = 0;
	do {
		rc = reroute_page(s, limit, after, filed, left, &rows, err, errlen);
	} while (rc == SINK_OK && rows == limit);
	return rc;
}

enum sink_status sink_parked_stats(struct sink *s, long long *count, long long *age_s, char *err,
                                   size_t errlen)
{
	PGresult *r = NULL;
	enum sink_status rc = run(s, ST_PARKED_STATS, NULL, &r, err, errlen);

	if (rc != SINK_OK)
		return rc;
	*count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	*age_s = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	return SINK_OK;
}

enum sink_status sink_maintain_events(struct sink *s, int ahead, long long retention_ms,
                                      long long *created, long long *dropped, char *err,
                                      size_t errlen)
{
	char a[16], r[24];
	const char *p[2] = {a, r};
	PGresult *res = NULL;
	enum sink_status rc;

	snprintf(a, sizeof(a), "%d", ahead);
	snprintf(r, sizeof(r), "%lld", retention_ms);
	rc = run(s, ST_EVENT_MAINTAIN, p, &res, err, errlen);
	if (rc != SINK_OK)
		return rc;
	*created = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*dropped = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return SINK_OK;
}

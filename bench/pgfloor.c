/* The PostgreSQL floor of the benchmark: how many rows shaped like ours (a calls row with the
 * end-of-call report as jsonb) the database stores per second, written three ways:
 *
 *   row    one upsert per transaction (autocommit), the statement the worker prepares
 *   batch  BATCH rows per multi-row INSERT ... ON CONFLICT DO UPDATE, one transaction each
 *   copy   BATCH rows per COPY ... FROM STDIN (plain insert), one transaction each
 *
 * Usage: pgfloor CONNINFO MODE SECONDS BODY_FILE ID_PREFIX [BATCH]
 * Runs whole transactions until SECONDS have passed and prints one line of JSON:
 * {"mode":"batch","rows":N,"seconds":S,"rows_per_s":R}. Exits 1 with a message on stderr on
 * any error. Every row gets a new vapi_call_id (ID_PREFIX-n), as a burst of new calls does.
 * Parameters go as text, so the server parses the JSON exactly as it does for the worker. */
#include "calls_row.h"
#include "timefmt.h"
#include "vapi_msg.h"

#include <jansson.h>
#include <libpq-fe.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOLS CALLS_NPARAMS
#define ORG "org_bench"

/* The worker's own column list, so that COPY writes the same columns. */
static const char *const cols = CALLS_SQL_COLUMNS;

/* One row: the parameters the worker's upsert would get for the body; [0] (the call id) is
 * set per row. */
struct row {
	struct vapi_msg m;
	struct calls_row r;
	char *report_json;           /* the message object alone, compact: what COPY stores */
	char started[40], ended[40]; /* started_at and ended_at as timestamptz text, for COPY */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("pgfloor: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		die("cannot read %s", path);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Fills r from the body exactly as the worker does for an end-of-call report filed by
 * metadata (the body stays alive: r borrows from it for the whole run). */
static void row_from_body(struct row *r, const char *body)
{
	json_error_t jerr;
	json_t *doc = json_loads(body, 0, &jerr);
	char why[256];

	if (doc == NULL || !json_is_object(json_object_get(doc, "message")))
		die("body is not {\"message\": {...}}: %s (line %d)", jerr.text, jerr.line);
	if (vapi_msg_parse(body, strlen(body), &r->m, why, sizeof(why)) != 0 || !r->m.is_report)
		die("body is not an end-of-call report: %s", why);
	calls_row_fill(&r->r, &r->m, ORG, "metadata", body);
	r->report_json =
	    json_dumps(json_object_get(doc, "message"), JSON_COMPACT | JSON_PRESERVE_ORDER);
	timefmt_iso_ms(r->m.started_ms, r->started, sizeof(r->started));
	timefmt_iso_ms(r->m.ended_ms, r->ended, sizeof(r->ended));
	json_decref(doc);
}

static void check(PGconn *c, PGresult *res, ExecStatusType want, const char *what)
{
	if (PQresultStatus(res) != want)
		die("%s: %s", what, PQerrorMessage(c));
	PQclear(res);
}

/* Appends to a growing buffer (doubling). */
struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 4096;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			die("out of memory");
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void prepare(PGconn *c, int rows)
{
	char *sql = calls_row_upsert_sql(rows);

	if (sql == NULL)
		die("out of memory");
	check(c, PQprepare(c, "upsert", sql, rows * NCOLS, NULL), PGRES_COMMAND_OK, "prepare");
	free(sql);
}

/* Runs the prepared upsert of rows rows numbered from *next; returns rows. */
static long run_upsert(PGconn *c, const struct row *r, int rows, const char *prefix, long *next,
                       const char **params, char (*ids)[64])
{
	for (int i = 0; i < rows; i++) {
		snprintf(ids[i], 64, "%s-%ld", prefix, (*next)++);
		memcpy(params + i * NCOLS, r->r.v, sizeof(r->r.v));
		params[i * NCOLS] = ids[i];
	}
	check(c, PQexecPrepared(c, "upsert", rows * NCOLS, params, NULL, NULL, 0), PGRES_COMMAND_OK,
	      "upsert");
	return rows;
}

/* COPY text format: backslash, tab, newline and carriage return escaped; NULL is \N. */
static void copy_field(struct buf *b, const char *s)
{
	if (s == NULL) {
		buf_str(b, "\\N");
		return;
	}
	for (const char *p = s; *p != '\0';) {
		size_t plain = strcspn(p, "\\\t\n\r");

		buf_add(b, p, plain);
		p += plain;
		if (*p == '\0')
			break;
		buf_str(b, *p == '\\' ? "\\\\" : *p == '\t' ? "\\t" : *p == '\n' ? "\\n" : "\\r");
		p++;
	}
}

static long run_copy(PGconn *c, const struct row *r, int rows, const char *prefix, long *next,
                     struct buf *b)
{
	char id[64], sql[512];

	b->len = 0;
	for (int i = 0; i < rows; i++) {
		snprintf(id, sizeof(id), "%s-%ld", prefix, (*next)++);
		for (int k = 0; k < NCOLS; k++) {
			if (k > 0)
				buf_str(b, "\t");
			copy_field(b, k == CALLS_P_CALL_ID      ? id
			              : k == CALLS_P_REPORT     ? r->report_json
			              : k == CALLS_P_STARTED_AT ? r->started
			              : k == CALLS_P_ENDED_AT   ? r->ended
			                                        : r->r.v[k]);
		}
		buf_str(b, "\n");
	}
	snprintf(sql, sizeof(sql), "COPY calls (%s) FROM STDIN", cols);
	check(c, PQexec(c, sql), PGRES_COPY_IN, "copy");
	if (PQputCopyData(c, b->p, (int)b->len) != 1 || PQputCopyEnd(c, NULL) != 1)
		die("copy data: %s", PQerrorMessage(c));
	check(c, PQgetResult(c), PGRES_COMMAND_OK, "copy end");
	PQclear(PQgetResult(c));
	return rows;
}

int main(int argc, char **argv)
{
	if (argc < 6)
		die("usage: pgfloor CONNINFO row|batch|copy SECONDS BODY_FILE ID_PREFIX [BATCH]");
	const char *mode = argv[2], *prefix = argv[5];
	double seconds = strtod(argv[3], NULL);
	int batch = argc > 6 ? (int)strtol(argv[6], NULL, 10) : 1000;
	PGconn *c = PQconnectdb(argv[1]);
	struct row r = {0};
	long rows = 0, next = 0;
	struct buf copybuf = {0};

	if (PQstatus(c) != CONNECTION_OK)
		die("connect: %s", PQerrorMessage(c));
	if (strcmp(mode, "row") != 0 && strcmp(mode, "batch") != 0 && strcmp(mode, "copy") != 0)
		die("unknown mode %s", mode);
	if (strcmp(mode, "row") == 0)
		batch = 1;
	if (batch < 1 || (strcmp(mode, "copy") != 0 && batch * NCOLS > 65535) || seconds <= 0)
		die("bad BATCH or SECONDS");
	row_from_body(&r, read_file(argv[4]));

	const char **params = calloc((size_t)batch * NCOLS, sizeof(*params));
	char(*ids)[64] = calloc((size_t)batch, sizeof(*ids));

	if (params == NULL || ids == NULL)
		die("out of memory");
	if (strcmp(mode, "copy") != 0)
		prepare(c, batch);

	double start = now_s(), elapsed;

	do {
		if (strcmp(mode, "copy") == 0)
			rows += run_copy(c, &r, batch, prefix, &next, &copybuf);
		else
			rows += run_upsert(c, &r, batch, prefix, &next, params, ids);
		elapsed = now_s() - start;
	} while (elapsed < seconds);
	printf("{\"mode\":\"%s\",\"batch\":%d,\"rows\":%ld,\"seconds\":%.3f,\"rows_per_s\":%.1f}\n",
	       mode, batch, rows, elapsed, (double)rows / elapsed);
	PQfinish(c);
	return 0;
}

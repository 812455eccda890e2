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
#include <jansson.h>
#include <libpq-fe.h>
#include "calls_sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOLS 15
#define ORG "org_bench"

/* The worker's own column list and merge rules, so that the floor writes rows as it does. */
static const char *const cols = CALLS_SQL_COLUMNS;
static const char *const on_conflict = CALLS_SQL_ON_CONFLICT;

/* The column values of one row, all text; [0] (the call id) is filled per row. */
struct row {
	const char *v[NCOLS];
	char *report_json; /* the message object alone, compact: what COPY stores */
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

static const char *str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Fills r from the body the way the worker extracts an end-of-call report. */
static void row_from_body(struct row *r, const char *body)
{
	json_error_t jerr;
	json_t *doc = json_loads(body, 0, &jerr);
	json_t *m = json_object_get(doc, "message");
	static char cost[32];

	if (doc == NULL || !json_is_object(m))
		die("body is not {\"message\": {...}}: %s (line %d)", jerr.text, jerr.line);
	snprintf(cost, sizeof(cost), "%.4f", json_number_value(json_object_get(m, "cost")));
	r->v[1] = ORG;
	r->v[2] = str_at(m, "call", "type");
	r->v[3] = "ended";
	r->v[4] = str_at(m, "customer", "number");
	r->v[5] = str_at(m, "call", "phoneNumberId");
	r->v[6] = str_at(m, "call", "assistantId");
	r->v[7] = str_at(m, "startedAt", NULL);
	r->v[8] = str_at(m, "endedAt", NULL);
	r->v[9] = str_at(m, "endedReason", NULL);
	r->v[10] = cost;
	r->v[11] = str_at(m, "artifact", "transcript");
	r->v[12] = str_at(m, "artifact", "recordingUrl");
	r->v[13] = str_at(m, "analysis", "summary");
	r->v[14] = body;
	r->report_json = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
	/* doc stays alive: the strings above borrow from it for the whole run. */
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

/* One VALUES tuple of the statement, parameters from first+1. */
static void add_tuple(struct buf *b, int first)
{
	char t[512];
	int p = first;

	snprintf(t, sizeof(t),
	         "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d::timestamptz, $%d::timestamptz, $%d,"
	         " $%d::numeric, $%d, $%d, $%d, ($%d::jsonb) -> 'message')",
	         p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9, p + 10, p + 11,
	         p + 12, p + 13, p + 14, p + 15);
	buf_str(b, t);
}

static void prepare(PGconn *c, int rows)
{
	struct buf sql = {0};

	buf_str(&sql, "INSERT INTO calls AS c (");
	buf_str(&sql, cols);
	buf_str(&sql, ") VALUES ");
	for (int i = 0; i < rows; i++) {
		if (i > 0)
			buf_str(&sql, ", ");
		add_tuple(&sql, i * NCOLS);
	}
	buf_str(&sql, on_conflict);
	check(c, PQprepare(c, "upsert", sql.p, rows * NCOLS, NULL), PGRES_COMMAND_OK, "prepare");
	free(sql.p);
}

/* Runs the prepared upsert of rows rows numbered from *next; returns rows. */
static long run_upsert(PGconn *c, const struct row *r, int rows, const char *prefix, long *next,
                       const char **params, char (*ids)[64])
{
	for (int i = 0; i < rows; i++) {
		snprintf(ids[i], 64, "%s-%ld", prefix, (*next)++);
		memcpy(params + i * NCOLS, r->v, sizeof(r->v));
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
			copy_field(b, k == 0 ? id : k == NCOLS - 1 ? r->report_json : r->v[k]);
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

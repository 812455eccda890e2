/* The calls row of one message: its column values, its precedence and its stamps. */
#include "calls_row.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stamps: precedence * STAMP_PREC + timestamp; timestamps reach 10^15 ms only in year 33658. */
#define STAMP_PREC 1000000000000000LL

enum calls_precedence calls_row_precedence(const struct vapi_msg *m)
{
	if (m->is_report)
		return CALLS_PREC_REPORT;
	if (strcmp(m->type, "status-update") != 0)
		return CALLS_PREC_OTHER;
	if (m->status != NULL && strcmp(m->status, "ended") == 0)
		return CALLS_PREC_STATUS_ENDED;
	return CALLS_PREC_STATUS;
}

long long calls_row_stamp(const struct vapi_msg *m)
{
	long long ts = m->timestamp_ms;

	if (ts < 0)
		ts = 0;
	if (ts >= STAMP_PREC)
		ts = STAMP_PREC - 1;
	return (long long)calls_row_precedence(m) * STAMP_PREC + ts;
}

/* endedAt - startedAt of a report in seconds, exact to the ms; NULL unless both are there. */
static const char *duration_text(const struct vapi_msg *m, char *buf, size_t size)
{
	long long d = m->ended_ms - m->started_ms;

	if (!m->is_report || m->started_ms == 0 || m->ended_ms == 0 || d < 0)
		return NULL;
	snprintf(buf, size, "%lld.%03lld", d / 1000, d % 1000);
	return buf;
}

/* The stamp array literal: stamp for each slot whose value is there, else NULL. */
static void fill_stamps(struct calls_row *r, long long stamp)
{
	static const int params[CALLS_NSTAMPS] = {CALLS_P_ORG,
#define CALLS_ROW_PARAM(slot, col, param) param,
	                                          CALLS_MERGED(CALLS_ROW_PARAM)
#undef CALLS_ROW_PARAM
	};
	size_t off = 0;

	for (size_t i = 0; i < CALLS_NSTAMPS; i++) {
		const char *sep = i == 0 ? "{" : ",";

		if (r->v[params[i]] != NULL)
			off += (size_t)snprintf(r->stamps + off, sizeof(r->stamps) - off, "%s%lld",
			                        sep, stamp);
		else
			off += (size_t)snprintf(r->stamps + off, sizeof(r->stamps) - off, "%sNULL",
			                        sep);
	}
	snprintf(r->stamps + off, sizeof(r->stamps) - off, "}");
	r->v[CALLS_P_STAMPS] = r->stamps;
}

void calls_row_fill(struct calls_row *r, const struct vapi_msg *m, const char *org,
                    const char *routed_by, const char *body)
{
	const char **v = r->v;

	memset(v, 0, sizeof(r->v));
	v[CALLS_P_CALL_ID] = m->call_id;
	v[CALLS_P_ORG] = org;
	v[CALLS_P_ROUTED_BY] = routed_by;
	v[CALLS_P_CALL_TYPE] = m->call_type;
	v[CALLS_P_STATUS] = m->status;
	v[CALLS_P_CUSTOMER_NUMBER] = m->customer_number;
	v[CALLS_P_PHONE_NUMBER_ID] = m->phone_number_id;
	v[CALLS_P_ASSISTANT_ID] = m->assistant_id;
	v[CALLS_P_STARTED_AT] = util_ms_text(m->started_ms, r->started, sizeof(r->started));
	v[CALLS_P_ENDED_AT] = util_ms_text(m->ended_ms, r->ended, sizeof(r->ended));
	v[CALLS_P_ENDED_REASON] = m->ended_reason;
	v[CALLS_P_COST] = m->cost;
	v[CALLS_P_TRANSCRIPT] = m->transcript;
	v[CALLS_P_RECORDING_URL] = m->recording_url;
	v[CALLS_P_SUMMARY] = m->summary;
	v[CALLS_P_REPORT] = m->is_report ? body : NULL;
	v[CALLS_P_METADATA] = m->metadata;
	v[CALLS_P_DURATION] = duration_text(m, r->duration, sizeof(r->duration));
	v[CALLS_P_STRUCTURED_DATA] = m->structured_data;
	v[CALLS_P_SUCCESS_EVALUATION] = m->success_evaluation;
	fill_stamps(r, calls_row_stamp(m));
}

/* The VALUES tuple of one row whose parameters start after first, with their casts. */
static int values_sql(int first, char *buf, size_t size)
{
	int p = first;

	_Static_assert(CALLS_NPARAMS == 21, "one placeholder per parameter");
	return snprintf(buf, size,
	                "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, to_timestamp($%d::float8 / 1000),"
	                " to_timestamp($%d::float8 / 1000), $%d, $%d::numeric, $%d, $%d, $%d,"
	                " ($%d::jsonb) -> 'message', $%d::jsonb, $%d::numeric, $%d::jsonb, $%d,"
	                " $%d::bigint[])",
	                p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9, p + 10,
	                p + 11, p + 12, p + 13, p + 14, p + 15, p + 16, p + 17, p + 18, p + 19,
	                p + 20, p + 21);
}

char *calls_row_upsert_sql(int rows)
{
	static const char head[] = "INSERT INTO calls AS c (" CALLS_SQL_COLUMNS ") VALUES ";
	static const char *const tail[] = {
	    CALLS_SQL_ON_CONFLICT_HEAD,
#define CALLS_ROW_SET(slot, col, param) CALLS_SQL_SET(slot, col, param),
	    CALLS_MERGED(CALLS_ROW_SET)
#undef CALLS_ROW_SET
	        CALLS_SQL_ON_CONFLICT_STAMPS,
	};
	char tuple[512];
	size_t tlen = (size_t)values_sql((rows - 1) * CALLS_NPARAMS, tuple, sizeof(tuple)) + 2;
	size_t size = sizeof(head) + (size_t)rows * tlen + 1, off;
	char *sql;

	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		size += strlen(tail[i]);
	sql = malloc(size);
	if (sql == NULL)
		return NULL;
	off = (size_t)snprintf(sql, size, "%s", head);
	/* No tuple is longer than the last one's, with the largest numbers. */
	for (int i = 0; i < rows; i++) {
		if (i > 0)
			off += (size_t)snprintf(sql + off, size - off, ", ");
		off += (size_t)values_sql(i * CALLS_NPARAMS, sql + off, size - off);
	}
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		off += (size_t)snprintf(sql + off, size - off, "%s", tail[i]);
	return sql;
}

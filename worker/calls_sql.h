#ifndef SB_CALLS_SQL_H
#define SB_CALLS_SQL_H

/* How a message merges into its row of `calls`: the SQL of the worker's upsert, and of the
 * benchmark's Postgres floor, which must write rows the same way to be a fair floor. The
 * table is aliased `c`. The rule (README "How calls is merged"):
 *
 * Every merged column has a stamp in calls.merge_stamps[slot]: the precedence of the message
 * that set it (calls_row_precedence()) times 10^15 plus that message's timestamp in ms, or
 * NULL while the column is NULL. A message's value replaces the stored one only when its
 * stamp is higher, or equal with a larger value; a NULL value has a NULL stamp and never
 * replaces anything. The row is so the maximum, column by column, over the messages stored,
 * whatever order they came in, and a message merged twice changes nothing (switchboard_touch
 * then skips the update). The stored stamp is the larger of the two (GREATEST skips NULLs).
 * `organization_id` and `routed_by` move together under slot 1; `status` keeps its rank
 * rule (never backwards), ties broken by the larger text. */

/* The parameters of one row, in the order of CALLS_SQL_COLUMNS. */
enum calls_param {
	CALLS_P_CALL_ID,
	CALLS_P_ORG,
	CALLS_P_ROUTED_BY,
	CALLS_P_CALL_TYPE,
	CALLS_P_STATUS,
	CALLS_P_CUSTOMER_NUMBER,
	CALLS_P_PHONE_NUMBER_ID,
	CALLS_P_ASSISTANT_ID,
	CALLS_P_STARTED_AT, /* epoch ms */
	CALLS_P_ENDED_AT,   /* epoch ms */
	CALLS_P_ENDED_REASON,
	CALLS_P_COST,
	CALLS_P_TRANSCRIPT,
	CALLS_P_RECORDING_URL,
	CALLS_P_SUMMARY,
	CALLS_P_REPORT, /* the whole body: its `message` is stored */
	CALLS_P_METADATA,
	CALLS_P_DURATION,
	CALLS_P_STRUCTURED_DATA,
	CALLS_P_SUCCESS_EVALUATION,
	CALLS_P_STAMPS, /* bigint[] literal, one stamp per merged slot */
	CALLS_NPARAMS
};

#define CALLS_SQL_COLUMNS                                                                          \
	"vapi_call_id, organization_id, routed_by, call_type, status, customer_number,"            \
	" phone_number_id, assistant_id, started_at, ended_at, ended_reason, cost, transcript,"    \
	" recording_url, summary, report, metadata, duration_seconds, structured_data,"            \
	" success_evaluation, merge_stamps"

/* The merged columns after slot 1 (organization_id with routed_by): X(slot, column, param).
 * The slot is the column's index in merge_stamps (1-based, as SQL counts). */
#define CALLS_MERGED(X)                                                                            \
	X("2", "call_type", CALLS_P_CALL_TYPE)                                                     \
	X("3", "customer_number", CALLS_P_CUSTOMER_NUMBER)                                         \
	X("4", "phone_number_id", CALLS_P_PHONE_NUMBER_ID)                                         \
	X("5", "assistant_id", CALLS_P_ASSISTANT_ID)                                               \
	X("6", "started_at", CALLS_P_STARTED_AT)                                                   \
	X("7", "ended_at", CALLS_P_ENDED_AT)                                                       \
	X("8", "ended_reason", CALLS_P_ENDED_REASON)                                               \
	X("9", "cost", CALLS_P_COST)                                                               \
	X("10", "transcript", CALLS_P_TRANSCRIPT)                                                  \
	X("11", "recording_url", CALLS_P_RECORDING_URL)                                            \
	X("12", "summary", CALLS_P_SUMMARY)                                                        \
	X("13", "report", CALLS_P_REPORT)                                                          \
	X("14", "metadata", CALLS_P_METADATA)                                                      \
	X("15", "duration_seconds", CALLS_P_DURATION)                                              \
	X("16", "structured_data", CALLS_P_STRUCTURED_DATA)                                        \
	X("17", "success_evaluation", CALLS_P_SUCCESS_EVALUATION)

/* Slots in merge_stamps: organization_id's and the CALLS_MERGED ones. */
#define CALLS_NSTAMPS 17

/* Whether the new row's value of slot wins: a higher stamp, or the same stamp and tie. */
#define CALLS_SQL_TAKES(slot, tie)                                                                 \
	"CASE WHEN EXCLUDED.merge_stamps[" slot "] IS NULL THEN false"                             \
	" WHEN c.merge_stamps[" slot "] IS NULL THEN true"                                         \
	" WHEN EXCLUDED.merge_stamps[" slot "] <> c.merge_stamps[" slot "]"                        \
	" THEN EXCLUDED.merge_stamps[" slot "] > c.merge_stamps[" slot "] ELSE " tie " END"

#define CALLS_SQL_SET(slot, col, param)                                                            \
	" " col                                                                                    \
	" = CASE WHEN " CALLS_SQL_TAKES(slot, "EXCLUDED." col " > c." col) " THEN EXCLUDED." col   \
	                                                                   " ELSE c." col " END,"

#define CALLS_SQL_ORG_TAKES                                                                        \
	CALLS_SQL_TAKES("1", "(EXCLUDED.organization_id, COALESCE(EXCLUDED.routed_by, ''))"        \
	                     " > (c.organization_id, COALESCE(c.routed_by, ''))")

#define CALLS_SQL_STAMP(slot, col, param)                                                          \
	", GREATEST(EXCLUDED.merge_stamps[" slot "], c.merge_stamps[" slot "])"

#define CALLS_SQL_RANK(v) "switchboard_status_rank(" v ")"

/* The upsert's tail, in pieces (a C string literal this long is not portable): HEAD, then
 * CALLS_MERGED(CALLS_SQL_SET) each a piece, then STAMPS. calls_row_upsert_sql() joins them. */
#define CALLS_SQL_ON_CONFLICT_HEAD                                                                 \
	" ON CONFLICT (vapi_call_id) DO UPDATE SET"                                                \
	" organization_id = CASE WHEN " CALLS_SQL_ORG_TAKES                                        \
	" THEN EXCLUDED.organization_id ELSE c.organization_id END,"                               \
	" routed_by = CASE WHEN " CALLS_SQL_ORG_TAKES " THEN EXCLUDED.routed_by ELSE c.routed_by"  \
	" END,"                                                                                    \
	" status = CASE WHEN EXCLUDED.status IS NULL THEN c.status"                                \
	" WHEN c.status IS NULL THEN EXCLUDED.status"                                              \
	" WHEN (" CALLS_SQL_RANK("EXCLUDED.status") ", EXCLUDED.status) > (" CALLS_SQL_RANK(       \
	    "c.status") ", c.status) THEN EXCLUDED.status ELSE c.status END,"

#define CALLS_SQL_ON_CONFLICT_STAMPS                                                               \
	" merge_stamps = ARRAY[GREATEST(EXCLUDED.merge_stamps[1], "                                \
	"c.merge_stamps[1])" CALLS_MERGED(CALLS_SQL_STAMP) "]"

#endif

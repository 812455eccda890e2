#ifndef SB_CALLS_SQL_H
#define SB_CALLS_SQL_H

/* How a message merges into its row of `calls`: the worker's upsert, and the benchmark's
 * Postgres floor, which must write rows the same way to be a fair floor. The table is
 * aliased `c`. */

#define CALLS_SQL_COLUMNS                                                                          \
	"vapi_call_id, organization_id, call_type, status, customer_number, phone_number_id,"      \
	" assistant_id, started_at, ended_at, ended_reason, cost, transcript, recording_url,"      \
	" summary, report"

/* The status never moves backwards; a value the message lacks never replaces one with NULL. */
#define CALLS_SQL_ON_CONFLICT                                                                      \
	" ON CONFLICT (vapi_call_id) DO UPDATE SET"                                                \
	" call_type = COALESCE(c.call_type, EXCLUDED.call_type),"                                  \
	" status = CASE WHEN switchboard_status_rank(EXCLUDED.status) >"                           \
	" switchboard_status_rank(c.status) THEN EXCLUDED.status ELSE c.status END,"               \
	" customer_number = COALESCE(EXCLUDED.customer_number, c.customer_number),"                \
	" phone_number_id = COALESCE(EXCLUDED.phone_number_id, c.phone_number_id),"                \
	" assistant_id = COALESCE(EXCLUDED.assistant_id, c.assistant_id),"                         \
	" started_at = COALESCE(EXCLUDED.started_at, c.started_at),"                               \
	" ended_at = COALESCE(EXCLUDED.ended_at, c.ended_at),"                                     \
	" ended_reason = COALESCE(EXCLUDED.ended_reason, c.ended_reason),"                         \
	" cost = COALESCE(EXCLUDED.cost, c.cost),"                                                 \
	" transcript = COALESCE(EXCLUDED.transcript, c.transcript),"                               \
	" recording_url = COALESCE(EXCLUDED.recording_url, c.recording_url),"                      \
	" summary = COALESCE(EXCLUDED.summary, c.summary),"                                        \
	" report = COALESCE(EXCLUDED.report, c.report)"

#endif

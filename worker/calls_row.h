#ifndef SB_CALLS_ROW_H
#define SB_CALLS_ROW_H

#include "calls_sql.h"
#include "vapi_msg.h"

#include <stddef.h>

/* The row of `calls` one message contributes, as the text parameters of the upsert in
 * calls_sql.h, with the per-column stamps that make the merge independent of order. */

/* Source precedence of a message (README "How calls is merged"): a value from a higher one
 * is never replaced by one from a lower one. */
enum calls_precedence {
	CALLS_PREC_OTHER,        /* every type but the two below */
	CALLS_PREC_STATUS,       /* status-update, status not "ended" */
	CALLS_PREC_STATUS_ENDED, /* status-update with status "ended" */
	CALLS_PREC_REPORT,       /* end-of-call-report */
};

/* One row's parameters; v[] points into m, the body, the org strings or the buffers here. */
struct calls_row {
	const char *v[CALLS_NPARAMS];
	char started[24], ended[24], duration[32];
	char stamps[CALLS_NSTAMPS * 21 + 4];
};

/* The precedence of m. */
enum calls_precedence calls_row_precedence(const struct vapi_msg *m);

/* m's stamp: its precedence times 10^15 plus its timestamp in ms (0 when it has none). */
long long calls_row_stamp(const struct vapi_msg *m);

/* Fills r with the row m contributes to its call, filed under org by the rule routed_by
 * (README "Routing"). body is m's whole body, stored as the report when m is one. Everything
 * is borrowed: r lives no longer than m, body, org and routed_by. */
void calls_row_fill(struct calls_row *r, const struct vapi_msg *m, const char *org,
                    const char *routed_by, const char *body);

/* The upsert of rows rows in one statement (parameters CALLS_NPARAMS per row, in
 * enum calls_param order): the worker's with 1, the benchmark floor's with more. Returns a
 * new string (free it), or NULL when out of memory. */
char *calls_row_upsert_sql(int rows) __attribute__((warn_unused_result));

#endif

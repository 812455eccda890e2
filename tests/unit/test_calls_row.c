/* calls_row: each message's precedence and stamp, the stamps that go with its values, and
 * the upsert statement built for one and for many rows. */
#include "calls_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void parse(const char *body, struct vapi_msg *m)
{
	char err[256];

	if (vapi_msg_parse(body, strlen(body), m, err, sizeof(err)) != 0) {
		print_error("refused %s: %s\n", body, err);
		fail();
	}
}

/* The stamp of the message in body, and its precedence in *prec when prec is not NULL. */
static long long stamp_of(const char *body, enum calls_precedence *prec)
{
	struct vapi_msg m;
	long long s;

	parse(body, &m);
	s = calls_row_stamp(&m);
	if (prec != NULL)
		*prec = calls_row_precedence(&m);
	vapi_msg_free(&m);
	return s;
}

static enum calls_precedence prec_of(const char *body)
{
	enum calls_precedence p;

	stamp_of(body, &p);
	return p;
}

static void test_precedence(void **state)
{
	(void)state;
	assert_int_equal(prec_of("{\"message\":{\"type\":\"end-of-call-report\"}}"),
	                 CALLS_PREC_REPORT);
	assert_int_equal(prec_of("{\"message\":{\"type\":\"status-update\",\"status\":\"ended\"}}"),
	                 CALLS_PREC_STATUS_ENDED);
	assert_int_equal(
	    prec_of("{\"message\":{\"type\":\"status-update\",\"status\":\"queued\"}}"),
	    CALLS_PREC_STATUS);
	assert_int_equal(prec_of("{\"message\":{\"type\":\"status-update\"}}"), CALLS_PREC_STATUS);
	/* A speech-update's own status is not the call's. */
	assert_int_equal(prec_of("{\"message\":{\"type\":\"speech-update\",\"status\":\"ended\"}}"),
	                 CALLS_PREC_OTHER);
	assert_int_equal(prec_of("{\"message\":{\"type\":\"transcript\"}}"), CALLS_PREC_OTHER);
	assert_true(CALLS_PREC_REPORT > CALLS_PREC_STATUS_ENDED &&
	            CALLS_PREC_STATUS_ENDED > CALLS_PREC_STATUS &&
	            CALLS_PREC_STATUS > CALLS_PREC_OTHER);
}

/* Any precedence outranks every timestamp of a lower one; timestamps order within one. */
static void test_stamps(void **state)
{
	(void)state;
	assert_true(stamp_of("{\"message\":{\"type\":\"end-of-call-report\","
	                     "\"timestamp\":1749546450909}}",
	                     NULL) == 3001749546450909LL);
	assert_true(stamp_of("{\"message\":{\"type\":\"end-of-call-report\","
	                     "\"timestamp\":\"2025-06-10T09:07:30.909Z\"}}",
	                     NULL) == 3001749546450909LL);
	assert_true(stamp_of("{\"message\":{\"type\":\"end-of-call-report\"}}", NULL) ==
	            3000000000000000LL);
	assert_true(stamp_of("{\"message\":{\"type\":\"transcript\",\"timestamp\":-5}}", NULL) ==
	            0);
	assert_true(
	    stamp_of("{\"message\":{\"type\":\"status-update\",\"status\":\"ended\","
	             "\"timestamp\":\"9999-12-31T23:59:59.999Z\"}}",
	             NULL) <
	    stamp_of("{\"message\":{\"type\":\"end-of-call-report\",\"timestamp\":1}}", NULL));
}

/* Counts the elements of a bigint[] literal and how many are NULL. */
static void count_stamps(const char *lit, int *n, int *nulls)
{
	*n = *nulls = 0;
	assert_true(lit[0] == '{' && lit[strlen(lit) - 1] == '}');
	for (const char *p = lit + 1; *p != '\0' && *p != '}'; (*n)++) {
		*nulls += strncmp(p, "NULL", 4) == 0;
		p += strcspn(p, ",}");
		p += *p == ',';
	}
}

static void test_fill(void **state)
{
	static const char report[] =
	    "{\"message\":{\"type\":\"end-of-call-report\",\"timestamp\":1000,"
	    "\"startedAt\":\"2026-01-01T00:00:00.500Z\",\"endedAt\":\"2026-01-01T00:00:59.750Z\","
	    "\"endedReason\":\"customer-ended-call\",\"call\":{\"id\":\"c1\"}}}";
	struct vapi_msg m;
	struct calls_row r;
	int n, nulls;

	(void)state;
	parse(report, &m);
	calls_row_fill(&r, &m, "org_a", "metadata", report);
	assert_string_equal(r.v[CALLS_P_CALL_ID], "c1");
	assert_string_equal(r.v[CALLS_P_ROUTED_BY], "metadata");
	assert_string_equal(r.v[CALLS_P_STATUS], "ended");
	assert_string_equal(r.v[CALLS_P_DURATION], "59.250");
	assert_ptr_equal(r.v[CALLS_P_REPORT], report);
	assert_null(r.v[CALLS_P_CUSTOMER_NUMBER]);
	/* org, started, ended, ended_reason, duration and report have values: their stamps. */
	assert_string_equal(r.v[CALLS_P_STAMPS],
	                    "{3000000000001000,NULL,NULL,NULL,NULL,3000000000001000,"
	                    "3000000000001000,3000000000001000,NULL,NULL,NULL,NULL,"
	                    "3000000000001000,NULL,3000000000001000,NULL,NULL}");
	count_stamps(r.v[CALLS_P_STAMPS], &n, &nulls);
	assert_int_equal(n, CALLS_NSTAMPS);
	assert_int_equal(nulls, CALLS_NSTAMPS - 6);
	vapi_msg_free(&m);

	/* A duration only from a report with both times in order. */
	parse("{\"message\":{\"type\":\"status-update\",\"status\":\"ended\","
	      "\"startedAt\":1000,\"endedAt\":2000}}",
	      &m);
	calls_row_fill(&r, &m, "org_a", "assistant", "{}");
	assert_null(r.v[CALLS_P_DURATION]);
	assert_null(r.v[CALLS_P_REPORT]);
	vapi_msg_free(&m);
	parse("{\"message\":{\"type\":\"end-of-call-report\",\"startedAt\":3000,\"endedAt\":2000}}",
	      &m);
	calls_row_fill(&r, &m, "org_a", "assistant", "{}");
	assert_null(r.v[CALLS_P_DURATION]);
	vapi_msg_free(&m);
}

/* The statement numbers every row's parameters, and sets every merged column. */
static void test_upsert_sql(void **state)
{
	static const char *const cols[] = {
#define COL(slot, col, param) col,
	    CALLS_MERGED(COL)
#undef COL
	};
	char *one = calls_row_upsert_sql(1), *three = calls_row_upsert_sql(3);
	char want[64];

	(void)state;
	assert_non_null(one);
	assert_non_null(three);
	snprintf(want, sizeof(want), "$%d::bigint[])", CALLS_NPARAMS);
	assert_non_null(strstr(one, want));
	snprintf(want, sizeof(want), "$%d", CALLS_NPARAMS + 1);
	assert_null(strstr(one, want));
	snprintf(want, sizeof(want), "$%d::bigint[])", 3 * CALLS_NPARAMS);
	assert_non_null(strstr(three, want));
	snprintf(want, sizeof(want), "($%d, ", 2 * CALLS_NPARAMS + 1);
	assert_non_null(strstr(three, want));
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		snprintf(want, sizeof(want), " %s = CASE WHEN", cols[i]);
		assert_non_null(strstr(one, want));
	}
	assert_non_null(strstr(one, "merge_stamps = ARRAY[GREATEST("));
	assert_string_equal(strstr(one, " ON CONFLICT"), strstr(three, " ON CONFLICT"));
	free(one);
	free(three);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_stamps),
	    cmocka_unit_test(test_fill),
	    cmocka_unit_test(test_upsert_sql),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

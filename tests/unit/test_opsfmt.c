/* What the operator commands print and decide from text: times, durations, stream ids, and
 * which failed PostgreSQL connects are a setting to fix (libpq's own messages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pgfail.h"
#include "timefmt.h"

static void test_durations_in_two_units(void **state)
{
	static const struct {
		long long ms;
		const char *text;
	} cases[] = {
	    {0, "0ms"},        {450, "450ms"},    {1000, "1s"},       {12999, "12s"},
	    {60000, "1m"},     {192000, "3m12s"}, {3600000, "1h"},    {3600000 + 300000, "1h5m"},
	    {7500000, "2h5m"}, {86400000, "1d"},  {97200000, "1d3h"}, {-192000, "-3m12s"},
	    {10000, "10s"},    {300000, "5m"},
	};
	char buf[24];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(timefmt_duration_ms(cases[i].ms, buf, sizeof(buf)),
		                    cases[i].text);
}

static void test_iso_times_are_utc_with_milliseconds(void **state)
{
	char buf[40];

	(void)state;
	assert_string_equal(timefmt_iso_ms(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
	assert_string_equal(timefmt_iso_ms(1795629150045LL, buf, sizeof(buf)),
	                    "2026-11-25T17:52:30.045Z");
	assert_string_equal(timefmt_iso_ms(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
}

static void test_stream_id_times(void **state)
{
	(void)state;
	assert_int_equal(timefmt_stream_id_ms("1795629150045-0"), 1795629150045LL);
	assert_int_equal(timefmt_stream_id_ms("1795629150045"), 1795629150045LL);
	assert_int_equal(timefmt_stream_id_ms("0-0"), 0);
	assert_int_equal(timefmt_stream_id_ms("-"), -1);
	assert_int_equal(timefmt_stream_id_ms("abc"), -1);
	assert_int_equal(timefmt_stream_id_ms("12x"), -1);
	assert_int_equal(timefmt_stream_id_ms(NULL), -1);
}

static void test_pg_failures_that_are_settings(void **state)
{
	static const char url[] = "postgresql://u@127.0.0.1:5432/db";
	static const char *const setting[] = {
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database "
	    "\"nope\" does not exist",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password "
	    "authentication failed for user \"u\"",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  role \"x\" "
	    "does not exist",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  no "
	    "pg_hba.conf entry for host \"127.0.0.1\", user \"u\", database \"db\", no encryption",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: fe_sendauth: no "
	    "password supplied",
	};
	static const char *const outage[] = {
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused "
	    "Is the server running on that host and accepting TCP/IP connections?",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the "
	    "database "
	    "system is starting up",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the "
	    "database "
	    "system is shutting down",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  sorry, too "
	    "many clients already",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  remaining "
	    "connection slots are reserved for non-replication superuser connections",
	    "connect: could not translate host name \"db\" to address: Temporary failure in name "
	    "resolution",
	    "connect: connection to server at \"127.0.0.1\", port 5432 failed: timeout expired",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(setting) / sizeof(setting[0]); i++)
		assert_true(pgfail_is_setting(url, setting[i]));
	for (size_t i = 0; i < sizeof(outage) / sizeof(outage[0]); i++)
		assert_false(pgfail_is_setting(url, outage[i]));
	/* A URL libpq cannot parse can never work, whatever the message. */
	assert_true(pgfail_is_setting("postgresql://h/db?bogus_option=1", "x"));
	assert_true(pgfail_is_setting("host=h port", NULL));
	assert_false(pgfail_is_setting("", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_durations_in_two_units),
	    cmocka_unit_test(test_iso_times_are_utc_with_milliseconds),
	    cmocka_unit_test(test_stream_id_times),
	    cmocka_unit_test(test_pg_failures_that_are_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

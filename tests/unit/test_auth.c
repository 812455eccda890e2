/* auth_check_secret(): the shared-secret header value Vapi sends, against ours. */
#include "auth.h"

#include <stdio.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SECRET "s3cret-from-vapi"

/* An offered header value and the verdict expected for it. */
struct offer {
	const char *offered; /* NULL: the header is absent */
	enum auth_result want;
};

static void check_offers(const struct auth_cfg *a, const struct offer *offers, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		enum auth_result got = auth_check_secret(a, offers[i].offered);

		if (got != offers[i].want) {
			print_error("offered \"%s\": expected %s, got %s\n",
			            offers[i].offered ? offers[i].offered : "(absent)",
			            auth_result_name(offers[i].want), auth_result_name(got));
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void test_ok(void **state)
{
	static const struct auth_cfg a = {SECRET, false};
	static const struct offer offers[] = {{SECRET, AUTH_OK}};

	(void)state;
	check_offers(&a, offers, NELEMS(offers));
}

/* An absent header and an empty one are the same: nothing was offered. */
static void test_missing(void **state)
{
	static const struct auth_cfg a = {SECRET, false};
	static const struct offer offers[] = {{NULL, AUTH_MISSING}, {"", AUTH_MISSING}};

	(void)state;
	check_offers(&a, offers, NELEMS(offers));
}

/* Near misses are the ones a careless comparison lets through. */
static void test_mismatch(void **state)
{
	static const struct auth_cfg a = {SECRET, false};
	static const struct offer offers[] = {
	    {"wrong", AUTH_MISMATCH},
	    {"s3cret-from-vap", AUTH_MISMATCH},   /* prefix of the secret */
	    {"s3cret-from-vapi!", AUTH_MISMATCH}, /* the secret and one byte more */
	    {"S3CRET-FROM-VAPI", AUTH_MISMATCH},  /* case matters */
	    {"s3cret-from-vapI", AUTH_MISMATCH},  /* last byte differs */
	    {" s3cret-from-vapi", AUTH_MISMATCH},
	};

	(void)state;
	check_offers(&a, offers, NELEMS(offers));
}

/* Turned off, everything passes, with no secret configured at all. */
static void test_disabled(void **state)
{
	static const struct auth_cfg off = {NULL, true};
	static const struct auth_cfg off_with_secret = {SECRET, true};
	static const struct offer offers[] = {
	    {NULL, AUTH_DISABLED},
	    {"", AUTH_DISABLED},
	    {"wrong", AUTH_DISABLED},
	    {SECRET, AUTH_DISABLED},
	};

	(void)state;
	check_offers(&off, offers, NELEMS(offers));
	check_offers(&off_with_secret, offers, NELEMS(offers));
}

/* The names are labels in logs and metrics: changing one breaks dashboards. */
static void test_result_names(void **state)
{
	(void)state;
	assert_string_equal(auth_result_name(AUTH_OK), "ok");
	assert_string_equal(auth_result_name(AUTH_MISSING), "missing");
	assert_string_equal(auth_result_name(AUTH_MISMATCH), "mismatch");
	assert_string_equal(auth_result_name(AUTH_DISABLED), "disabled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),           cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_mismatch),     cmocka_unit_test(test_disabled),
	    cmocka_unit_test(test_result_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The routing-facts cache: hits, misses, expiry, NULL key parts and eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "orgcache.h"

#include <stdio.h>

static void test_hit_miss_and_expiry(void **state)
{
	struct orgcache *c = orgcache_new(64);
	struct route_facts in = {"org_a", true, NULL}, out;

	(void)state;
	assert_non_null(c);
	assert_int_equal(orgcache_get(c, "pn_1", NULL, "asst_1", 1000, &out), 0);
	orgcache_put(c, "pn_1", NULL, "asst_1", &in, 1000);
	assert_int_equal(orgcache_get(c, "pn_1", NULL, "asst_1", 1000 + ORGCACHE_TTL_MS - 1, &out),
	                 1);
	assert_string_equal(out.phone_org, "org_a");
	assert_true(out.meta_org_exists);
	assert_null(out.assistant_org);
	orgcache_facts_free(&out);
	/* Other keys, including the same parts in other places, miss. */
	assert_int_equal(orgcache_get(c, NULL, "pn_1", "asst_1", 1000, &out), 0);
	assert_int_equal(orgcache_get(c, "pn_1", NULL, NULL, 1000, &out), 0);
	/* A new phone number is seen once the entry expires. */
	assert_int_equal(orgcache_get(c, "pn_1", NULL, "asst_1", 1000 + ORGCACHE_TTL_MS, &out), 0);
	orgcache_free(c);
}

static void test_unknown_facts_are_cached_too(void **state)
{
	struct orgcache *c = orgcache_new(16);
	struct route_facts in = {NULL, false, NULL}, out = {"x", true, "y"};

	(void)state;
	orgcache_put(c, "pn_new", "org_x", NULL, &in, 0);
	assert_int_equal(orgcache_get(c, "pn_new", "org_x", NULL, 1, &out), 1);
	assert_null(out.phone_org);
	assert_null(out.assistant_org);
	assert_false(out.meta_org_exists);
	orgcache_free(c);
}

static void test_replacement_keeps_working(void **state)
{
	struct orgcache *c = orgcache_new(4);
	struct route_facts out;
	char key[32], org[32];
	int hits = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		struct route_facts in = {org, false, NULL};

		snprintf(key, sizeof(key), "pn_%d", i);
		snprintf(org, sizeof(org), "org_%d", i);
		orgcache_put(c, key, NULL, NULL, &in, 0);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "pn_%d", i);
		if (orgcache_get(c, key, NULL, NULL, 1, &out)) {
			snprintf(org, sizeof(org), "org_%d", i);
			assert_string_equal(out.phone_org, org); /* never another key's facts */
			orgcache_facts_free(&out);
			hits++;
		}
	}
	assert_in_range(hits, 1, 4);
	orgcache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hit_miss_and_expiry),
	    cmocka_unit_test(test_unknown_facts_are_cached_too),
	    cmocka_unit_test(test_replacement_keeps_working),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

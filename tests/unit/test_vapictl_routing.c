/* routing import's plan over the cases in tests/fixtures/routing-import/cases.json (each:
 * what Vapi says and the tables hold, and the rows wanted as [kind, id, action, org]). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "routing.h"

#include <stdio.h>
#include <string.h>

#define CASES "tests/fixtures/routing-import/cases.json"

static const json_t *in_field(const json_t *c, const char *k)
{
	return json_object_get(json_object_get(c, "input"), k);
}

static void check_case(const json_t *c)
{
	struct routing_input in = {in_field(c, "vapi_assistants"), in_field(c, "vapi_phones"),
	                           in_field(c, "orgs"), in_field(c, "db_assistants"),
	                           in_field(c, "db_phones")};
	const json_t *want = json_object_get(c, "want"), *w;
	json_t *plan = routing_plan_new(&in);
	size_t i;

	printf("case: %s\n", json_string_value(json_object_get(c, "name")));
	assert_non_null(plan);
	assert_int_equal(json_array_size(plan), json_array_size(want));
	json_array_foreach(want, i, w)
	{
		const json_t *row = json_array_get(plan, i);
		const char *org = json_string_value(json_array_get(w, 3));

		assert_string_equal(json_string_value(json_object_get(row, "kind")),
		                    json_string_value(json_array_get(w, 0)));
		assert_string_equal(json_string_value(json_object_get(row, "id")),
		                    json_string_value(json_array_get(w, 1)));
		assert_string_equal(json_string_value(json_object_get(row, "action")),
		                    json_string_value(json_array_get(w, 2)));
		if (org == NULL)
			assert_null(json_string_value(json_object_get(row, "org")));
		else
			assert_string_equal(json_string_value(json_object_get(row, "org")), org);
		/* Every row that is not simply right says why. */
		if (strcmp(json_string_value(json_array_get(w, 2)), ROUTING_CONFLICT) == 0 ||
		    strcmp(json_string_value(json_array_get(w, 2)), ROUTING_NO_ORG) == 0)
			assert_true(strlen(json_string_value(json_object_get(row, "why"))) > 10);
	}
	json_decref(plan);
}

static void test_cases(void **state)
{
	json_error_t jerr;
	json_t *cases = json_load_file(CASES, 0, &jerr);
	const json_t *c;
	size_t i;

	(void)state;
	if (cases == NULL)
		fail_msg("%s: line %d: %s", CASES, jerr.line, jerr.text);
	assert_true(json_array_size(cases) >= 5);
	json_array_foreach(cases, i, c)
	{
		check_case(c);
	}
	json_decref(cases);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The one-pass scanner against jansson, which the worker used to build a whole tree with:
 * the same documents accepted and refused (every fixture, and thousands of mutations of
 * them), the same values read, and the corner cases one at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jscan.h"
#include "testutil.h"
#include "vapi_msg.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define END                                                                                        \
	{                                                                                          \
		NULL, -1, NULL                                                                     \
	}
enum { S_MSG, S_TYPE, S_CALL_ID, S_ORG, S_COST, S_COUNT };
static const struct jscan_path meta[] = {{"organizationId", S_ORG, NULL}, END};
static const struct jscan_path call[] = {{"id", S_CALL_ID, NULL}, {"metadata", -1, meta}, END};
static const struct jscan_path msg[] = {
    {"type", S_TYPE, NULL}, {"cost", S_COST, NULL}, {"call", -1, call}, END};
static const struct jscan_path root[] = {{"message", S_MSG, msg}, END};

static int scan(const char *text, size_t len, struct jscan_value *v, char **arena)
{
	char err[200];

	return jscan_parse(text, len, root, v, S_COUNT, arena, err, sizeof(err));
}

static int scan_ok(const char *text)
{
	struct jscan_value v[S_COUNT];
	char *arena = NULL;
	int rc = scan(text, strlen(text), v, &arena);

	free(arena);
	return rc == 0;
}

static int jansson_ok(const char *text, size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(text, len, 0, &e);

	json_decref(j);
	return j != NULL;
}

/* Both must agree on text; returns 0 when they do. */
static int agree(const char *what, const char *text, size_t len)
{
	struct jscan_value v[S_COUNT];
	char *arena = NULL;
	int mine = scan(text, len, v, &arena) == 0, theirs = jansson_ok(text, len);

	free(arena);
	if (mine == theirs)
		return 0;
	print_error("%s: jscan %s, jansson %s: %.*s\n", what, mine ? "accepts" : "refuses",
	            theirs ? "accepts" : "refuses", (int)(len > 200 ? 200 : len), text);
	return 1;
}

static void test_corner_cases(void **state)
{
	static const char *cases[] = {
	    "{}",
	    "[]",
	    "[1,2,[3,{}]]",
	    "  {\"a\" : [ true , false , null ] }  ",
	    "{\"a\":1}x",
	    "1",
	    "\"s\"",
	    "",
	    " ",
	    "{",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1,}",
	    "[1,]",
	    "[01]",
	    "[-]",
	    "[-0]",
	    "[1.]",
	    "[.5]",
	    "[1e]",
	    "[1e+5]",
	    "[1E-5]",
	    "[-1.5e300]",
	    "[1e400]",
	    "[-1e400]",
	    "[1e-400]",
	    "[9223372036854775807]",
	    "[9223372036854775808]",
	    "[-9223372036854775808]",
	    "[-9223372036854775809]",
	    "[12345678901234567890123]",
	    "[\"\\u0000\"]",
	    "[\"\\u0041\\u00e9\\u20ac\"]",
	    "[\"\\ud83d\\ude00\"]",
	    "[\"\\ud83d\"]",
	    "[\"\\ude00\"]",
	    "[\"\\ud83d\\u0041\"]",
	    "[\"\\x\"]",
	    "[\"\\u12\"]",
	    "[\"a\tb\"]",
	    "[\"\xc3\xa9\"]",
	    "[\"\xc3\"]",
	    "[\"\xc0\xaf\"]",
	    "[\"\xe0\x80\xaf\"]",
	    "[\"\xed\xa0\x80\"]",
	    "[\"\xf4\x90\x80\x80\"]",
	    "[\"\xf0\x9f\x98\x80\"]",
	    "[\"\xff\"]",
	    "[tru]",
	    "[nul]",
	    "[truex]",
	    "{\"a\":1}\n",
	    "\xef\xbb\xbf{}",
	    "{\"message\":{\"type\":\"x\"},\"message\":3}",
	    "[1 2]",
	    "{\"a\" 1}",
	    "[\"\\/\"]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(agree("case", cases[i], strlen(cases[i])), 0);
}

static void test_depth_limit(void **state)
{
	char *deep = malloc(2 * 2100 + 1);

	(void)state;
	assert_non_null(deep);
	for (int depth = 2046; depth <= 2050; depth++) {
		memset(deep, '[', (size_t)depth);
		memset(deep + depth, ']', (size_t)depth);
		assert_int_equal(agree("depth", deep, 2 * (size_t)depth), 0);
	}
	/* A scalar leaf is a level too: `[`×2047 `1` is 2048 deep, the most accepted. */
	for (int depth = 2047; depth <= 2049; depth++) {
		struct jscan_value v[S_COUNT];
		char *arena = NULL;

		memset(deep, '[', (size_t)depth);
		deep[depth] = '1';
		memset(deep + depth + 1, ']', (size_t)depth);
		assert_int_equal(agree("leaf depth", deep, 2 * (size_t)depth + 1), 0);
		assert_int_equal(scan(deep, 2 * (size_t)depth + 1, v, &arena),
		                 depth < 2048 ? 0 : -1);
		free(arena);
	}
	free(deep);
}

static void test_values_and_duplicates(void **state)
{
	const char *text = "{\"message\":{\"type\":\"a\",\"call\":{\"id\":\"old\",\"metadata\":"
	                   "{\"organizationId\":\"org_1\"}},\"ty\\u0070e\":\"end\\u00e9\\n\","
	                   "\"call\":{\"id\":\"new\"},\"cost\":0.25}}";
	struct jscan_value v[S_COUNT];
	char *arena = NULL;

	(void)state;
	assert_int_equal(scan(text, strlen(text), v, &arena), 0);
	assert_int_equal(v[S_MSG].kind, JSCAN_OBJECT);
	assert_int_equal(v[S_TYPE].kind, JSCAN_STRING);
	assert_string_equal(v[S_TYPE].str, "end\xc3\xa9\n"); /* the escaped key, last wins */
	assert_string_equal(v[S_CALL_ID].str, "new");
	assert_int_equal(v[S_ORG].kind, JSCAN_ABSENT); /* the first "call" is gone whole */
	assert_int_equal(v[S_COST].kind, JSCAN_REAL);
	assert_true(v[S_COST].d == 0.25);
	free(arena);
	assert_true(scan_ok("{\"message\":{\"type\":7}}"));
	/* A failure reports where. */
	{
		char err[200];

		arena = NULL;
		assert_int_equal(jscan_parse("{\n  \"a\": tru }", 14, root, v, S_COUNT, &arena, err,
		                             sizeof(err)),
		                 -1);
		free(arena);
		assert_non_null(strstr(err, "line 2 column 8"));
	}
}

/* The fields read through a jansson tree, the way the worker read them before. */
static const char *tree_str(json_t *obj, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		obj = json_object_get(obj, key);
		path = dot + 1;
	}
	obj = json_object_get(obj, path);
	return json_is_string(obj) && json_string_length(obj) > 0 ? json_string_value(obj) : NULL;
}

static int same(const char *file, const char *field, const char *a, const char *b)
{
	if ((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0))
		return 0;
	print_error("%s: %s is \"%s\", jansson reads \"%s\"\n", file, field, a ? a : "(null)",
	            b ? b : "(null)");
	return 1;
}

/* Every field vapi_msg reads, against the tree. */
static int compare_fields(const char *file, const char *text, size_t len)
{
	struct vapi_msg m;
	char err[256];
	json_t *j = json_loadb(text, len, 0, NULL), *msgj = json_object_get(j, "message");
	int bad = 0;

	if (vapi_msg_parse(text, len, &m, err, sizeof(err)) != 0) {
		bad = json_is_object(msgj) && tree_str(msgj, "type") != NULL;
		if (bad)
			print_error("%s: refused (%s), jansson reads it\n", file, err);
		json_decref(j);
		return bad;
	}
	bad |= same(file, "type", m.type, tree_str(msgj, "type"));
	bad |= same(file, "call.id", m.call_id, tree_str(msgj, "call.id"));
	bad |= same(file, "call.type", m.call_type, tree_str(msgj, "call.type"));
	bad |= same(file, "endedReason", m.ended_reason, tree_str(msgj, "endedReason"));
	bad |= same(file, "customer", m.customer_number,
	            tree_str(msgj, "customer.number") ? tree_str(msgj, "customer.number")
	                                              : tree_str(msgj, "call.customer.number"));
	bad |= same(file, "assistant", m.assistant_id,
	            tree_str(msgj, "call.assistantId") ? tree_str(msgj, "call.assistantId")
	                                               : tree_str(msgj, "assistant.id"));
	if (m.is_report)
		bad |= same(file, "transcript", m.transcript,
		            tree_str(msgj, "artifact.transcript")
		                ? tree_str(msgj, "artifact.transcript")
		                : tree_str(msgj, "transcript"));
	vapi_msg_free(&m);
	json_decref(j);
	return bad;
}

/* Mutations of text: cut short at many places, and single bytes replaced by the bytes
 * that change the grammar. Returns the disagreements. */
static int mutate(const char *file, const char *text, size_t len)
{
	static const char subst[] = {'"', '\\', '{',    '}',    '[',    ']',    ',', ':', '0', '-',
	                             'e', '\n', '\x01', '\x80', '\xc3', '\xff', ' ', 'u', 'n'};
	char *buf = malloc(len + 1);
	size_t step = len / 97 + 1;
	int bad = 0;

	assert_non_null(buf);
	for (size_t cut = 0; cut < len && !bad; cut += step)
		bad |= agree(file, text, cut);
	for (size_t at = 0; at < len && !bad; at += step) {
		for (size_t k = 0; k < sizeof(subst) && !bad; k++) {
			memcpy(buf, text, len);
			buf[at] = subst[k];
			bad |= agree(file, buf, len);
		}
	}
	free(buf);
	return bad;
}

static int check_dir(const char *dir, int *files)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int bad = 0;

	if (d == NULL) {
		print_error("cannot open %s\n", dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[1024];
		size_t len;
		char *text;

		if (strstr(de->d_name, ".json") == NULL && strstr(de->d_name, ".body") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		text = test_slurp(path, &len);
		if (text == NULL)
			continue;
		bad |= agree(path, text, len) | compare_fields(path, text, len) |
		       mutate(path, text, len);
		free(text);
		(*files)++;
	}
	closedir(d);
	return bad;
}

static void test_fixtures_and_their_mutations(void **state)
{
	const char *dirs[] = {"tests/fixtures/vapi", "tests/fixtures", "tests/fixtures/malformed"};
	int files = 0, bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		bad |= check_dir(dirs[i], &files);
	assert_int_equal(bad, 0);
	assert_true(files >= 25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corner_cases),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_values_and_duplicates),
	    cmocka_unit_test(test_fixtures_and_their_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

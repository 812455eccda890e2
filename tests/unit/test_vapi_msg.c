/* vapi_msg_parse() and vapi_msg_dedupe_key() over real Vapi messages and our own fixtures.
 *
 * The bodies are read at run time from two folders: the real samples (VAPI_SAMPLES_DIR,
 * default tests/fixtures/vapi) and the composed fixtures (FIXTURES_DIR, default
 * tests/fixtures). Every *.json there must have a row of expected values below and every
 * row a file, so a new sample cannot slip in untested. Mismatches are all printed with the
 * file and field before the test fails. */
#include "vapi_msg.h"

#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* The stream entry id handed to vapi_msg_dedupe_key() as its fallback. */
#define FALLBACK_ID "1700000000000-0"

/* Expected facts of one file. Field names follow struct vapi_msg; NULL and 0 mean the
 * field must be absent. */
struct expect {
	const char *file; /* base name in its folder */
	const char *type;
	const char *call_id;
	const char *call_type;
	bool inbound;
	const char *status;
	const char *phone_number_id;
	const char *assistant_id;
	const char *customer_number;
	const char *meta_org_id;
	const char *meta_org_from;
	const char *ended_reason;
	const char *cost; /* as Vapi sent it; compared by value */
	int64_t timestamp_ms;
	int64_t started_ms;
	int64_t ended_ms;
	bool has_transcript; /* transcript, recording and summary: present or not */
	bool has_recording;
	bool has_summary;
	const char *dedupe;   /* vapi_msg_dedupe_key() with FALLBACK_ID */
	const char *metadata; /* the metadata object's JSON text, as in the file */
	const char *structured_data;
	const char *success_evaluation;
};

/* The real samples (tests/fixtures/vapi/README.md says where each comes from). */
static const struct expect samples[] = {
    {.file = "assistant-request.inbound-sip-masked.help-netizen-twilio-front-integration.json",
     .type = "assistant-request",
     .call_id = "01a01bd5-7351-7cc6-aec0-349030348269",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .phone_number_id = "d446b324-f016-48ba-b536-78c61652184d",
     .timestamp_ms = 1787173368682,
     .dedupe = "1787173368682"},
    {.file = "assistant-request.inbound-sip-vapi-number.jtmuller5-wanda.json",
     .type = "assistant-request",
     .call_id = "f8736ebe-7919-43ec-8637-21991535aab4",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .phone_number_id = "0eac8823-cc7f-4e85-8d05-dee356a4522f",
     .customer_number = "+13152716606",
     .timestamp_ms = 1748289798737,
     .dedupe = "1748289798737"},
    {.file = "assistant-request.inbound-twilio.vapi4k.json",
     .type = "assistant-request",
     .call_id = "b1223960-1b4d-4585-91b8-a69b0f57ec2f",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .phone_number_id = "4a5a04dc-dcbe-45b1-8f64-fd32a253d136",
     .customer_number = "+14566836490",
     .timestamp_ms = 1721933627736, /* "2024-07-25T18:53:47.736Z" */
     .dedupe = "1721933627736"},
    /* Stale call snapshot (status ringing); transcript and recording only at top level. */
    {.file = "end-of-call-report.inbound-twilio-squad.vapi4k.json",
     .type = "end-of-call-report",
     .call_id = "b1223960-1b4d-4585-91b8-a69b0f57ec2f",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .status = "ended",
     .phone_number_id = "4a5a04dc-dcbe-45b1-8f64-fd32a253d136",
     .customer_number = "+14566836490",
     .ended_reason = "customer-ended-call",
     .timestamp_ms = 1722115445712, /* "2024-07-27T21:24:05.712Z" */
     .has_transcript = true,
     .has_recording = true,
     .has_summary = true,
     .dedupe = "",
     .success_evaluation = "true"},
    /* call.cost is 0 and call.status queued in the snapshot; analysis.summary absent and
     * the top-level summary empty, so no summary. */
    {.file = "end-of-call-report.webcall-assistant-overrides.smukerji-chatbotAI.json",
     .type = "end-of-call-report",
     .call_id = "019c32ba-1e0f-7004-935b-7fa3e7399a21",
     .call_type = "webCall",
     .status = "ended",
     .assistant_id = "55a4eaba-766d-41fa-85b3-971168655969",
     .ended_reason = "customer-ended-call",
     .cost = "0.1034",
     .timestamp_ms = 1770377651312,
     .started_ms = 1770377589529, /* "2026-02-06T11:33:09.529Z" */
     .ended_ms = 1770377647963,   /* "2026-02-06T11:34:07.963Z" */
     .has_transcript = true,
     .has_recording = true,
     .dedupe = ""},
    {.file = "end-of-call-report.webcall.itsvineetkr-finzie.json",
     .type = "end-of-call-report",
     .call_id = "73daba4d-2bcc-4cca-8e49-3d7903467ade",
     .call_type = "webCall",
     .status = "ended",
     .assistant_id = "054ea7e1-a5fc-4b9c-8c7c-9c6e80d21921",
     .ended_reason = "customer-ended-call",
     .cost = "0.0394",
     .timestamp_ms = 1749546450909,
     .started_ms = 1749546420649, /* "2025-06-10T09:07:00.649Z" */
     .ended_ms = 1749546445925,   /* "2025-06-10T09:07:25.925Z" */
     .has_transcript = true,
     .has_recording = true,
     .has_summary = true,
     .dedupe = "",
     .success_evaluation = "true"},
    {.file = "status-update.webcall-in-progress.itsvineetkr-finzie.json",
     .type = "status-update",
     .call_id = "73daba4d-2bcc-4cca-8e49-3d7903467ade",
     .call_type = "webCall",
     .status = "in-progress",
     .assistant_id = "054ea7e1-a5fc-4b9c-8c7c-9c6e80d21921",
     .timestamp_ms = 1749546420647,
     .dedupe = "in-progress"},
    {.file = "tool-calls.inbound-twilio.vapi4k.json",
     .type = "tool-calls",
     .call_id = "b1223960-1b4d-4585-91b8-a69b0f57ec2f",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .phone_number_id = "4a5a04dc-dcbe-45b1-8f64-fd32a253d136",
     .customer_number = "+14566836490",
     .timestamp_ms = 1722032457931, /* "2024-07-26T22:20:57.931Z" */
     .dedupe = "1722032457931"},
};

/* The composed fixtures (tests/fixtures/README.md says what each covers). */
static const struct expect fixtures[] = {
    {.file = "outbound.overrides-metadata.json",
     .type = "status-update",
     .call_id = "call-out-overrides-0001",
     .call_type = "outboundPhoneCall",
     .status = "in-progress",
     .phone_number_id = "phone-outbound-0001",
     .assistant_id = "asst-sales-0001",
     .customer_number = "+15550100001",
     .meta_org_id = "org_acme",
     .meta_org_from = "call.assistantOverrides.metadata",
     .timestamp_ms = 1740815700000,
     .dedupe = "in-progress",
     .metadata = "{ \"organizationId\": \"org_acme\", \"leadId\": \"lead_42\" }"},
    {.file = "outbound.assistant-metadata.json",
     .type = "end-of-call-report",
     .call_id = "call-out-asstmeta-0002",
     .call_type = "outboundPhoneCall",
     .status = "ended",
     .phone_number_id = "phone-outbound-0001",
     .assistant_id = "asst-sales-0001",
     .customer_number = "+15550100002",
     .meta_org_id = "org_globex",
     .meta_org_from = "assistant.metadata",
     .ended_reason = "customer-ended-call",
     .cost = "3",
     .timestamp_ms = 1740816360000,
     .started_ms = 1740816000000, /* "2025-03-01T10:00:00+02:00" */
     .ended_ms = 1740816330250,   /* "2025-03-01T10:05:30.250+02:00" */
     .has_transcript = true,
     .has_recording = true,
     .has_summary = true,
     .dedupe = "",
     .metadata = "{ \"organizationId\": \"org_globex\" }",
     .structured_data = "{ \"outcome\": \"declined\", \"callbackRequested\": false }",
     .success_evaluation = "false"},
    {.file = "outbound.call-metadata.json",
     .type = "status-update",
     .call_id = "call-out-callmeta-0003",
     .call_type = "outboundPhoneCall",
     .status = "ringing",
     .assistant_id = "asst-legacy-0003",
     .customer_number = "+15550100003",
     .meta_org_id = "org_initech",
     .meta_org_from = "call.metadata",
     .timestamp_ms = 1698912900000, /* "2023-11-02T08:15:00Z" */
     .dedupe = "ringing",
     .metadata = "{ \"organizationId\": \"org_initech\" }"},
    {.file = "outbound.assistant-and-call-metadata.json",
     .type = "hang",
     .call_id = "call-out-bothmeta-0004",
     .call_type = "outboundPhoneCall",
     .assistant_id = "asst-sales-0001",
     .meta_org_id = "org_umbrella",
     .meta_org_from = "assistant.metadata",
     .timestamp_ms = 1740823300000,
     .dedupe = "1740823300000",
     .metadata = "{ \"organizationId\": \"org_umbrella\" }"},
    /* A speech-update's own "status" (started/stopped) is not a call status. */
    {.file = "webcall.no-metadata.json",
     .type = "speech-update",
     .call_id = "call-web-0005",
     .call_type = "webCall",
     .assistant_id = "asst-support-0005",
     .timestamp_ms = 1749546425000,
     .dedupe = "1749546425000"},
    {.file = "inbound.phone.json",
     .type = "status-update",
     .call_id = "call-in-phone-0006",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .status = "ringing",
     .phone_number_id = "phone-inbound-0006",
     .assistant_id = "asst-reception-0006",
     .customer_number = "+15550100006",
     .timestamp_ms = 1722115200000,
     .dedupe = "ringing"},
    {.file = "inbound.metadata-other-org.json",
     .type = "conversation-update",
     .call_id = "call-in-spoof-0007",
     .call_type = "inboundPhoneCall",
     .inbound = true,
     .phone_number_id = "phone-inbound-0006",
     .customer_number = "+15550100007",
     .meta_org_id = "org_intruder",
     .meta_org_from = "call.assistantOverrides.metadata",
     .timestamp_ms = 1722115260000,
     .dedupe = "1722115260000",
     .metadata = "{ \"organizationId\": \"org_intruder\" }"},
    {.file = "status-update.ended.json",
     .type = "status-update",
     .call_id = "call-out-ended-0008",
     .call_type = "outboundPhoneCall",
     .status = "ended",
     .phone_number_id = "phone-outbound-0001",
     .assistant_id = "asst-sales-0001",
     .customer_number = "+15550100008",
     .ended_reason = "assistant-ended-call",
     .timestamp_ms = 1740816331000,
     .dedupe = "ended"},
    /* No status and no timestamp: the stream entry id keeps deliveries apart. */
    {.file = "unknown-type.no-identifiers.json",
     .type = "x-future-event",
     .call_id = "call-bare-0009",
     .call_type = "vapi.websocketCall",
     .dedupe = FALLBACK_ID},
};

/* A body that must be refused, and a piece of the reason it must give. */
struct refusal {
	const char *file; /* base name in tests/fixtures/malformed */
	const char *why;  /* text the error must contain */
};

static const struct refusal refusals[] = {
    {"not-json.body", "invalid JSON"},
    {"truncated.body", "invalid JSON"},
    {"empty.body", "invalid JSON"},
    {"trailing-garbage.body", "invalid JSON"},
    {"no-message.body", "\"message\""},
    {"message-not-object.body", "\"message\""},
    {"array.body", "\"message\""},
    {"no-type.body", "message.type"},
    {"type-not-string.body", "message.type"},
    {"type-empty.body", "message.type"},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *dir_from_env(const char *var, const char *def)
{
	const char *d = getenv(var);

	return d != NULL && *d != '\0' ? d : def;
}

static const char *samples_dir(void)
{
	return dir_from_env("VAPI_SAMPLES_DIR", "tests/fixtures/vapi");
}

static const char *fixtures_dir(void)
{
	return dir_from_env("FIXTURES_DIR", "tests/fixtures");
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Paths matching dir/pattern into *g (release with globfree()); fails the test when
 * there are none, since an empty folder would make every check pass. */
static void list_files(const char *dir, const char *pattern, glob_t *g)
{
	char pat[1024];

	snprintf(pat, sizeof(pat), "%s/%s", dir, pattern);
	if (glob(pat, 0, NULL, g) != 0) {
		print_error("no files match %s (run from the repository root, or set the "
		            "folder's environment variable)\n",
		            pat);
		fail();
	}
}

static int same_str(const char *file, const char *field, const char *want, const char *got)
{
	if (want == NULL ? got == NULL : got != NULL && strcmp(want, got) == 0)
		return 0;
	print_error("%s: %s: expected \"%s\", got \"%s\"\n", file, field, want ? want : "(null)",
	            got ? got : "(null)");
	return 1;
}

static int same_i64(const char *file, const char *field, int64_t want, int64_t got)
{
	if (want == got)
		return 0;
	print_error("%s: %s: expected %lld, got %lld\n", file, field, (long long)want,
	            (long long)got);
	return 1;
}

static int same_bool(const char *file, const char *field, bool want, bool got)
{
	if (want == got)
		return 0;
	print_error("%s: %s: expected %s, got %s\n", file, field, want ? "true" : "false",
	            got ? "true" : "false");
	return 1;
}

/* Cost is compared as a number: the text is printed from the double jansson read, so it
 * need not repeat Vapi's digits, but it must read back as the same value. */
static int same_cost(const char *file, const char *want, const char *got)
{
	char *end = NULL;

	if (want != NULL && got != NULL && strtod(got, &end) == strtod(want, NULL) && *end == '\0')
		return 0;
	return same_str(file, "cost", want, got);
}

#define CHECK_STR(f) same_str(e->file, #f, e->f, m->f)
#define CHECK_I64(f) same_i64(e->file, #f, e->f, m->f)

/* Number of fields of m that differ from e, each printed. */
static int check_msg(const struct expect *e, const struct vapi_msg *m)
{
	bool report = strcmp(e->type, "end-of-call-report") == 0;
	char key[64];
	int bad = 0;

	bad += CHECK_STR(type) + CHECK_STR(call_id) + CHECK_STR(call_type);
	bad += CHECK_STR(status) + CHECK_STR(ended_reason);
	bad += CHECK_STR(phone_number_id) + CHECK_STR(assistant_id);
	bad += CHECK_STR(customer_number);
	bad += CHECK_STR(meta_org_id) + CHECK_STR(meta_org_from);
	bad += CHECK_I64(timestamp_ms) + CHECK_I64(started_ms) + CHECK_I64(ended_ms);
	bad += same_cost(e->file, e->cost, m->cost);
	bad += same_bool(e->file, "inbound", e->inbound, m->inbound);
	bad += same_bool(e->file, "is_report", report, m->is_report);
	bad += same_bool(e->file, "transcript", e->has_transcript, m->transcript != NULL);
	bad += same_bool(e->file, "recording_url", e->has_recording, m->recording_url != NULL);
	bad += same_bool(e->file, "summary", e->has_summary, m->summary != NULL);
	bad += CHECK_STR(metadata) + CHECK_STR(structured_data) + CHECK_STR(success_evaluation);
	bad += same_str(e->file, "dedupe key", e->dedupe,
	                vapi_msg_dedupe_key(m, FALLBACK_ID, key, sizeof(key)));
	return bad;
}

/* Parses the file at path and compares it with e. Returns the number of mismatches. */
static int check_file(const char *path, const struct expect *e)
{
	struct vapi_msg m;
	char err[256];
	size_t len = 0;
	char *body = test_slurp(path, &len);
	int bad;

	if (body == NULL) {
		print_error("%s: cannot read\n", path);
		return 1;
	}
	if (vapi_msg_parse(body, len, &m, err, sizeof(err)) != 0) {
		print_error("%s: refused: %s\n", path, err);
		free(body);
		return 1;
	}
	bad = check_msg(e, &m);
	vapi_msg_free(&m);
	free(body);
	return bad;
}

static const struct expect *find_row(const struct expect *rows, size_t n, const char *file)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].file, file) == 0)
			return &rows[i];
	return NULL;
}

static bool has_file(const glob_t *g, const char *file)
{
	for (size_t i = 0; i < g->gl_pathc; i++)
		if (strcmp(base_name(g->gl_pathv[i]), file) == 0)
			return true;
	return false;
}

/* Checks every *.json in dir against its row, and that every row has its file. */
static void check_dir(const char *dir, const struct expect *rows, size_t n)
{
	glob_t g;
	int bad = 0;

	list_files(dir, "*.json", &g);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const struct expect *e = find_row(rows, n, base_name(g.gl_pathv[i]));

		if (e == NULL) {
			print_error("%s: no row of expected values for it\n", g.gl_pathv[i]);
			bad++;
			continue;
		}
		bad += check_file(g.gl_pathv[i], e);
	}
	for (size_t i = 0; i < n; i++) {
		if (!has_file(&g, rows[i].file)) {
			print_error("%s/%s: expected but missing\n", dir, rows[i].file);
			bad++;
		}
	}
	globfree(&g);
	assert_int_equal(bad, 0);
}

static void test_real_samples(void **state)
{
	(void)state;
	check_dir(samples_dir(), samples, NELEMS(samples));
}

static void test_composed_fixtures(void **state)
{
	(void)state;
	check_dir(fixtures_dir(), fixtures, NELEMS(fixtures));
}

/* Parses a body that must be refused; returns 0 when it was, with a reason containing
 * why and nothing left to free. */
static int check_refused(const char *name, const char *body, size_t len, const char *why)
{
	struct vapi_msg m;
	char err[256] = "";

	if (vapi_msg_parse(body, len, &m, err, sizeof(err)) == 0) {
		print_error("%s: accepted, type \"%s\"\n", name, m.type);
		vapi_msg_free(&m);
		return 1;
	}
	if (m.arena != NULL || strstr(err, why) == NULL) {
		print_error("%s: reason \"%s\" lacks \"%s\" (arena %p)\n", name, err, why,
		            (void *)m.arena);
		return 1;
	}
	return 0;
}

static const struct refusal *find_refusal(const char *file)
{
	for (size_t i = 0; i < NELEMS(refusals); i++)
		if (strcmp(refusals[i].file, file) == 0)
			return &refusals[i];
	return NULL;
}

static void test_malformed_bodies(void **state)
{
	char dir[1024];
	size_t len = 0, seen = 0;
	glob_t g;
	int bad = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/malformed", fixtures_dir());
	list_files(dir, "*.body", &g);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const struct refusal *r = find_refusal(base_name(g.gl_pathv[i]));
		char *body = test_slurp(g.gl_pathv[i], &len);

		if (r == NULL || body == NULL) {
			print_error("%s: unreadable or no row\n", g.gl_pathv[i]);
			bad++;
		} else {
			bad += check_refused(r->file, body, len, r->why);
			seen++;
		}
		free(body);
	}
	globfree(&g);
	assert_int_equal(bad, 0);
	assert_int_equal(seen, NELEMS(refusals));
}

/* The parser reads len bytes, not up to a NUL: a valid body cut short is refused, and a
 * zero length is an empty body whatever follows in memory. */
static void test_length_is_honoured(void **state)
{
	static const char body[] = "{\"message\": {\"type\": \"hang\"}}";
	struct vapi_msg m;
	char err[256];

	(void)state;
	assert_int_equal(check_refused("cut short", body, sizeof(body) - 3, "invalid JSON"), 0);
	assert_int_equal(check_refused("zero length", body, 0, "invalid JSON"), 0);
	assert_int_equal(vapi_msg_parse(body, sizeof(body) - 1, &m, err, sizeof(err)), 0);
	assert_string_equal(m.type, "hang");
	vapi_msg_free(&m);
}

/* The reason carries jansson's position, so an operator can find the fault in a body. */
static void test_error_names_position(void **state)
{
	static const char body[] = "{\n  \"message\": {\"type\": }\n}";
	struct vapi_msg m;
	char err[256];

	(void)state;
	assert_int_not_equal(vapi_msg_parse(body, strlen(body), &m, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "line 2"));
}

static void parse_text(const char *body, struct vapi_msg *m)
{
	char err[256];

	if (vapi_msg_parse(body, strlen(body), m, err, sizeof(err)) != 0) {
		print_error("refused %s: %s\n", body, err);
		fail();
	}
}

/* timestamp in every form Vapi has used: epoch ms as integer or (per its OpenAPI, a
 * double) real, ISO-8601, and digits in a string; unreadable text is absent, not an
 * error. */
static void test_timestamp_forms(void **state)
{
	static const struct {
		const char *body;
		int64_t ms;
	} cases[] = {
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":1749546420647}}", 1749546420647},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":1749546420647.0}}", 1749546420647},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":\"2025-06-10T09:07:00.647Z\"}}",
	     1749546420647},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":\"1749546420647\"}}", 1749546420647},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":\"1749546420\"}}", 1749546420000},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":\"yesterday\"}}", 0},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":null}}", 0},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":1e300}}", 0},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":-1e300}}", 0},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":9223372036854775807}}", 0},
	    {"{\"message\":{\"type\":\"hang\",\"timestamp\":\"2024-02-29T00:00:00Z\"}}",
	     1709164800000},
	};
	struct vapi_msg m;

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++) {
		parse_text(cases[i].body, &m);
		assert_int_equal(m.timestamp_ms, cases[i].ms);
		vapi_msg_free(&m);
	}
}

/* Only the end-of-call report fills transcript, recording and summary: a transcript
 * message's one remark must never replace a call's full transcript. Costs keep the
 * digits Vapi sent. */
static void test_report_only_fields_and_cost_text(void **state)
{
	struct vapi_msg m;

	(void)state;
	parse_text("{\"message\":{\"type\":\"transcript\",\"transcript\":\"Yes.\","
	           "\"artifact\":{\"recordingUrl\":\"https://r/partial\"},"
	           "\"summary\":\"s\",\"call\":{\"id\":\"c1\"}}}",
	           &m);
	assert_null(m.transcript);
	assert_null(m.recording_url);
	assert_null(m.summary);
	vapi_msg_free(&m);
	parse_text("{\"message\":{\"type\":\"end-of-call-report\",\"transcript\":\"All.\","
	           "\"cost\":0.1034,\"call\":{\"id\":\"c1\"}}}",
	           &m);
	assert_string_equal(m.transcript, "All.");
	assert_string_equal(m.cost, "0.1034");
	vapi_msg_free(&m);
	parse_text("{\"message\":{\"type\":\"end-of-call-report\",\"cost\":0.0394}}", &m);
	assert_string_equal(m.cost, "0.0394");
	vapi_msg_free(&m);
}

/* The metadata kept is the one organizationId came from, else the first object in routing's
 * order; analysis values keep their JSON unless they are strings, and only reports have
 * them. */
static void test_metadata_and_analysis_rules(void **state)
{
	struct vapi_msg m;

	(void)state;
	parse_text("{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"c1\","
	           "\"metadata\":{\"organizationId\":\"org_c\"}},"
	           "\"assistant\":{\"metadata\":{\"leadId\":7}}}}",
	           &m);
	assert_string_equal(m.metadata, "{\"organizationId\":\"org_c\"}");
	vapi_msg_free(&m);
	parse_text("{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"c1\","
	           "\"metadata\":{\"a\":1},\"assistantOverrides\":{\"metadata\":null}},"
	           "\"assistant\":{\"metadata\":{\"leadId\":[7, 8]}}}}",
	           &m);
	assert_null(m.meta_org_id);
	assert_string_equal(m.metadata, "{\"leadId\":[7, 8]}");
	vapi_msg_free(&m);
	parse_text("{\"message\":{\"type\":\"end-of-call-report\",\"analysis\":{"
	           "\"structuredData\":[1,{\"x\":\"\\u00e9\"}],\"successEvaluation\":0.8}}}",
	           &m);
	assert_string_equal(m.structured_data, "[1,{\"x\":\"\\u00e9\"}]");
	assert_string_equal(m.success_evaluation, "0.8");
	vapi_msg_free(&m);
	parse_text("{\"message\":{\"type\":\"end-of-call-report\",\"analysis\":{"
	           "\"structuredData\":null,\"successEvaluation\":\"Pass\"}}}",
	           &m);
	assert_null(m.structured_data);
	assert_string_equal(m.success_evaluation, "Pass");
	assert_null(m.json);
	vapi_msg_free(&m);
	parse_text("{\"message\":{\"type\":\"transcript\",\"analysis\":{"
	           "\"structuredData\":{},\"successEvaluation\":true}}}",
	           &m);
	assert_null(m.structured_data);
	assert_null(m.success_evaluation);
	vapi_msg_free(&m);
}

/* The key rules beyond what the files show: a status-update without status falls back
 * to the timestamp, a report ignores any status field, and the key is cut to fit. */
static void test_dedupe_key_rules(void **state)
{
	static const struct {
		const char *body;
		size_t size;
		const char *key;
	} cases[] = {
	    {"{\"message\":{\"type\":\"status-update\",\"timestamp\":42}}", 64, "42"},
	    {"{\"message\":{\"type\":\"status-update\"}}", 64, FALLBACK_ID},
	    {"{\"message\":{\"type\":\"end-of-call-report\",\"status\":\"x\",\"timestamp\":1}}", 64,
	     ""},
	    {"{\"message\":{\"type\":\"status-update\",\"status\":\"in-progress\"}}", 4, "in-"},
	    {"{\"message\":{\"type\":\"transcript\",\"timestamp\":\"1970-01-01T00:00:01Z\"}}", 64,
	     "1000"},
	};
	struct vapi_msg m;
	char key[64];

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++) {
		parse_text(cases[i].body, &m);
		assert_string_equal(vapi_msg_dedupe_key(&m, FALLBACK_ID, key, cases[i].size),
		                    cases[i].key);
		vapi_msg_free(&m);
	}
}

/* Non-string or empty identifiers count as absent, so nothing routes on "" or 42. */
static void test_non_string_fields_are_absent(void **state)
{
	static const char body[] =
	    "{\"message\":{\"type\":\"status-update\",\"status\":\"\",\"call\":{\"id\":42,"
	    "\"type\":null,\"assistantId\":\"\",\"metadata\":{\"organizationId\":7}},"
	    "\"assistant\":{\"id\":\"asst-1\"},\"cost\":\"0.5\"}}";
	struct vapi_msg m;

	(void)state;
	parse_text(body, &m);
	assert_null(m.call_id);
	assert_null(m.call_type);
	assert_false(m.inbound);
	assert_null(m.status);
	assert_string_equal(m.assistant_id, "asst-1");
	assert_null(m.meta_org_id);
	assert_null(m.meta_org_from);
	assert_null(m.cost);
	vapi_msg_free(&m);
}

static void test_free_is_safe_twice_and_on_null(void **state)
{
	struct vapi_msg m;

	(void)state;
	vapi_msg_free(NULL);
	parse_text("{\"message\":{\"type\":\"hang\"}}", &m);
	vapi_msg_free(&m);
	assert_null(m.arena);
	vapi_msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_real_samples),
	    cmocka_unit_test(test_composed_fixtures),
	    cmocka_unit_test(test_malformed_bodies),
	    cmocka_unit_test(test_length_is_honoured),
	    cmocka_unit_test(test_error_names_position),
	    cmocka_unit_test(test_timestamp_forms),
	    cmocka_unit_test(test_dedupe_key_rules),
	    cmocka_unit_test(test_report_only_fields_and_cost_text),
	    cmocka_unit_test(test_metadata_and_analysis_rules),
	    cmocka_unit_test(test_non_string_fields_are_absent),
	    cmocka_unit_test(test_free_is_safe_twice_and_on_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

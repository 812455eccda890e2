/* Vapi server message → the fields we store and route by, read in one pass without a tree. */
#include "vapi_msg.h"

#include "jscan.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The values read, one slot each. */
enum {
	V_MESSAGE,
	V_TYPE,
	V_STATUS,
	V_ENDED_REASON,
	V_TRANSCRIPT,
	V_RECORDING,
	V_SUMMARY,
	V_TIMESTAMP,
	V_STARTED,
	V_ENDED,
	V_COST,
	V_CALL_ID,
	V_CALL_TYPE,
	V_CALL_PHONE,
	V_CALL_ASSISTANT,
	V_CALL_CUSTOMER,
	V_CALL_OVERRIDES_ORG,
	V_CALL_META_ORG,
	V_PHONE_ID,
	V_ASSISTANT_ID,
	V_ASSISTANT_META_ORG,
	V_CUSTOMER_NUMBER,
	V_ART_TRANSCRIPT,
	V_ART_RECORDING,
	V_ANALYSIS_SUMMARY,
	V_ANALYSIS_STRUCTURED,
	V_ANALYSIS_SUCCESS,
	V_CALL_OVERRIDES_META,
	V_ASSISTANT_META,
	V_CALL_META,
	V_COUNT
};

#define END                                                                                        \
	{                                                                                          \
		NULL, -1, NULL                                                                     \
	}
static const struct jscan_path overrides_meta[] = {{"organizationId", V_CALL_OVERRIDES_ORG, NULL},
                                                   END};
static const struct jscan_path overrides[] = {{"metadata", V_CALL_OVERRIDES_META, overrides_meta},
                                              END};
static const struct jscan_path call_meta[] = {{"organizationId", V_CALL_META_ORG, NULL}, END};
static const struct jscan_path call_customer[] = {{"number", V_CALL_CUSTOMER, NULL}, END};
static const struct jscan_path call[] = {
    {"id", V_CALL_ID, NULL},
    {"type", V_CALL_TYPE, NULL},
    {"phoneNumberId", V_CALL_PHONE, NULL},
    {"assistantId", V_CALL_ASSISTANT, NULL},
    {"customer", -1, call_customer},
    {"assistantOverrides", -1, overrides},
    {"metadata", V_CALL_META, call_meta},
    END,
};
static const struct jscan_path phone[] = {{"id", V_PHONE_ID, NULL}, END};
static const struct jscan_path assistant_meta[] = {{"organizationId", V_ASSISTANT_META_ORG, NULL},
                                                   END};
static const struct jscan_path assistant[] = {
    {"id", V_ASSISTANT_ID, NULL}, {"metadata", V_ASSISTANT_META, assistant_meta}, END};
static const struct jscan_path customer[] = {{"number", V_CUSTOMER_NUMBER, NULL}, END};
static const struct jscan_path artifact[] = {
    {"transcript", V_ART_TRANSCRIPT, NULL}, {"recordingUrl", V_ART_RECORDING, NULL}, END};
static const struct jscan_path analysis[] = {{"summary", V_ANALYSIS_SUMMARY, NULL},
                                             {"structuredData", V_ANALYSIS_STRUCTURED, NULL},
                                             {"successEvaluation", V_ANALYSIS_SUCCESS, NULL},
                                             END};
static const struct jscan_path message[] = {
    {"type", V_TYPE, NULL},
    {"status", V_STATUS, NULL},
    {"endedReason", V_ENDED_REASON, NULL},
    {"transcript", V_TRANSCRIPT, NULL},
    {"recordingUrl", V_RECORDING, NULL},
    {"summary", V_SUMMARY, NULL},
    {"timestamp", V_TIMESTAMP, NULL},
    {"startedAt", V_STARTED, NULL},
    {"endedAt", V_ENDED, NULL},
    {"cost", V_COST, NULL},
    {"call", -1, call},
    {"phoneNumber", -1, phone},
    {"assistant", -1, assistant},
    {"customer", -1, customer},
    {"artifact", -1, artifact},
    {"analysis", -1, analysis},
    END,
};
static const struct jscan_path body_paths[] = {{"message", V_MESSAGE, message}, END};

/* A non-empty string value, or NULL. */
static const char *str_of(const struct jscan_value *v)
{
	return v->kind == JSCAN_STRING && v->len > 0 ? v->str : NULL;
}

static const char *first_str(const struct jscan_value *v, int a, int b)
{
	const char *s = str_of(&v[a]);

	return s != NULL ? s : str_of(&v[b]);
}

/* Epoch milliseconds of 10000-01-01: later (or as far before 1970) is not a real time. */
#define VAPI_MSG_MAX_MS 253402300800000LL

/* A time field: epoch milliseconds as a number, or a string in any form
 * util_parse_time_ms() takes. 0 when absent or unreadable. */
static int64_t time_of(const struct jscan_value *v)
{
	int64_t ms;

	if (v->kind == JSCAN_INTEGER)
		ms = (int64_t)v->i;
	else if (v->kind == JSCAN_REAL && fabs(v->d) < (double)VAPI_MSG_MAX_MS)
		ms = (int64_t)v->d;
	else if (v->kind != JSCAN_STRING || util_parse_time_ms(v->str, &ms) != 0)
		return 0;
	/* Outside years 0001..9999 it is no time Vapi sent: treat it as absent. */
	return ms > -VAPI_MSG_MAX_MS && ms < VAPI_MSG_MAX_MS ? ms : 0;
}

static void read_cost(const struct jscan_value *v, struct vapi_msg *m)
{
	if (v->kind == JSCAN_INTEGER) {
		snprintf(m->cost_buf, sizeof(m->cost_buf), "%lld", v->i);
	} else if (v->kind == JSCAN_REAL && isfinite(v->d)) {
		/* The shortest text that reads back as the same double: 0.1034, not
		 * 0.10340000000000001. */
		snprintf(m->cost_buf, sizeof(m->cost_buf), "%.15g", v->d);
		if (strtod(m->cost_buf, NULL) != v->d)
			snprintf(m->cost_buf, sizeof(m->cost_buf), "%.17g", v->d);
	} else {
		return;
	}
	m->cost = m->cost_buf;
}

/* The metadata objects, in routing's precedence: the call's assistantOverrides, the
 * assistant, the call. */
static const int meta_slots[] = {V_CALL_OVERRIDES_META, V_ASSISTANT_META, V_CALL_META};
static const int meta_org_slots[] = {V_CALL_OVERRIDES_ORG, V_ASSISTANT_META_ORG, V_CALL_META_ORG};
static const char *const meta_names[] = {"call.assistantOverrides.metadata", "assistant.metadata",
                                         "call.metadata"};

/* organizationId from the first metadata that has one, and that metadata object (else the
 * first metadata object there is) as the call's metadata. Returns the object's slot or -1. */
static int read_meta(const struct jscan_value *v, struct vapi_msg *m)
{
	int first = -1;

	for (size_t i = 0; i < 3; i++) {
		if (first < 0 && v[meta_slots[i]].kind == JSCAN_OBJECT)
			first = meta_slots[i];
		m->meta_org_id = str_of(&v[meta_org_slots[i]]);
		if (m->meta_org_id != NULL) {
			m->meta_org_from = meta_names[i];
			return meta_slots[i];
		}
	}
	return first;
}

/* JSON text of v unless it is absent or null. */
static const struct jscan_value *json_of(const struct jscan_value *v)
{
	if (v->kind == JSCAN_ABSENT || (v->raw_len == 4 && memcmp(v->raw, "null", 4) == 0))
		return NULL;
	return v;
}

/* Copies the JSON texts kept (metadata, the report's analysis) into one owned buffer, each
 * NUL-terminated. Returns 0, or -1 when out of memory. */
static int keep_json(const struct jscan_value *v, int meta_slot, struct vapi_msg *m)
{
	const struct jscan_value *src[3] = {NULL, NULL, NULL};
	const char **dst[3] = {&m->metadata, &m->structured_data, &m->success_evaluation};
	size_t total = 0, off = 0;

	if (meta_slot >= 0)
		src[0] = &v[meta_slot];
	if (m->is_report) {
		src[1] = json_of(&v[V_ANALYSIS_STRUCTURED]);
		/* A string is kept as its text; any other value as its JSON (true, 0.8). */
		if (v[V_ANALYSIS_SUCCESS].kind == JSCAN_STRING)
			m->success_evaluation = str_of(&v[V_ANALYSIS_SUCCESS]);
		else
			src[2] = json_of(&v[V_ANALYSIS_SUCCESS]);
	}
	for (size_t i = 0; i < 3; i++)
		total += src[i] != NULL ? src[i]->raw_len + 1 : 0;
	if (total == 0)
		return 0;
	m->json = malloc(total);
	if (m->json == NULL)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (src[i] == NULL)
			continue;
		memcpy(m->json + off, src[i]->raw, src[i]->raw_len);
		m->json[off + src[i]->raw_len] = '\0';
		*dst[i] = m->json + off;
		off += src[i]->raw_len + 1;
	}
	return 0;
}

static int read_fields(const struct jscan_value *v, struct vapi_msg *m)
{
	m->call_id = str_of(&v[V_CALL_ID]);
	m->call_type = str_of(&v[V_CALL_TYPE]);
	m->inbound = m->call_type != NULL && strcmp(m->call_type, "inboundPhoneCall") == 0;
	m->is_report = strcmp(m->type, "end-of-call-report") == 0;
	m->status = m->is_report                            ? "ended"
	            : strcmp(m->type, "status-update") == 0 ? str_of(&v[V_STATUS])
	                                                    : NULL;
	m->phone_number_id = first_str(v, V_CALL_PHONE, V_PHONE_ID);
	m->assistant_id = first_str(v, V_CALL_ASSISTANT, V_ASSISTANT_ID);
	m->customer_number = first_str(v, V_CUSTOMER_NUMBER, V_CALL_CUSTOMER);
	m->ended_reason = str_of(&v[V_ENDED_REASON]);
	if (m->is_report) {
		/* Only the report's are final: a transcript message carries one remark as its
		 * top-level transcript, and mid-call messages a partial artifact. */
		m->transcript = first_str(v, V_ART_TRANSCRIPT, V_TRANSCRIPT);
		m->recording_url = first_str(v, V_ART_RECORDING, V_RECORDING);
		m->summary = first_str(v, V_ANALYSIS_SUMMARY, V_SUMMARY);
	}
	m->timestamp_ms = time_of(&v[V_TIMESTAMP]);
	m->started_ms = time_of(&v[V_STARTED]);
	m->ended_ms = time_of(&v[V_ENDED]);
	read_cost(&v[V_COST], m);
	return keep_json(v, read_meta(v, m), m);
}

int vapi_msg_parse(const char *body, size_t len, struct vapi_msg *m, char *err, size_t errlen)
{
	struct jscan_value v[V_COUNT];
	char why[200];

	memset(m, 0, sizeof(*m));
	if (jscan_parse(body, len, body_paths, v, V_COUNT, &m->arena, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "invalid JSON at %s", why);
		goto fail;
	}
	if (v[V_MESSAGE].kind != JSCAN_OBJECT) {
		snprintf(err, errlen, "no \"message\" object");
		goto fail;
	}
	m->type = str_of(&v[V_TYPE]);
	if (m->type == NULL) {
		snprintf(err, errlen, "no message.type");
		goto fail;
	}
	if (read_fields(v, m) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	vapi_msg_free(m);
	return -1;
}

void vapi_msg_free(struct vapi_msg *m)
{
	if (m == NULL)
		return;
	free(m->arena);
	m->arena = NULL;
	free(m->json);
	m->json = NULL;
}

const char *vapi_msg_dedupe_key(const struct vapi_msg *m, const char *fallback, char *buf,
                                size_t size)
{
	if (m->status != NULL && !m->is_report)
		snprintf(buf, size, "%s", m->status);
	else if (m->is_report)
		snprintf(buf, size, "%s", "");
	else if (m->timestamp_ms != 0)
		snprintf(buf, size, "%lld", (long long)m->timestamp_ms);
	else
		snprintf(buf, size, "%s", fallback);
	return buf;
}

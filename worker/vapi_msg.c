/* Vapi server message → the fields we store and route by. */
#include "vapi_msg.h"

#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Borrowed string at a dotted path below obj, or NULL when absent or not a string. */
static const char *str_at(json_t *obj, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		size_t n = (size_t)(dot - path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		obj = json_object_get(obj, key);
		path = dot + 1;
	}
	obj = json_object_get(obj, path);
	return json_is_string(obj) && json_string_length(obj) > 0 ? json_string_value(obj) : NULL;
}

static const char *first_str(json_t *msg, const char *a, const char *b)
{
	const char *s = str_at(msg, a);

	return s != NULL ? s : str_at(msg, b);
}

/* Epoch milliseconds of 10000-01-01: later (or as far before 1970) is not a real time. */
#define VAPI_MSG_MAX_MS 253402300800000LL

/* A time field: epoch milliseconds as a number, or a string in any form
 * util_parse_time_ms() takes. 0 when absent or unreadable. */
static int64_t time_at(json_t *msg, const char *key)
{
	json_t *v = json_object_get(msg, key);
	int64_t ms;

	if (json_is_integer(v))
		ms = (int64_t)json_integer_value(v);
	else if (json_is_real(v) && fabs(json_real_value(v)) < (double)VAPI_MSG_MAX_MS)
		ms = (int64_t)json_real_value(v);
	else if (!json_is_string(v) || util_parse_time_ms(json_string_value(v), &ms) != 0)
		return 0;
	/* Outside years 0001..9999 it is no time Vapi sent: treat it as absent. */
	return ms > -VAPI_MSG_MAX_MS && ms < VAPI_MSG_MAX_MS ? ms : 0;
}

static void read_cost(json_t *msg, struct vapi_msg *m)
{
	json_t *v = json_object_get(msg, "cost");

	if (json_is_integer(v)) {
		snprintf(m->cost_buf, sizeof(m->cost_buf), "%lld",
		         (long long)json_integer_value(v));
	} else if (json_is_real(v) && isfinite(json_real_value(v))) {
		/* The shortest text that reads back as the same double: 0.1034, not
		 * 0.10340000000000001. */
		double d = json_real_value(v);

		snprintf(m->cost_buf, sizeof(m->cost_buf), "%.15g", d);
		if (strtod(m->cost_buf, NULL) != d)
			snprintf(m->cost_buf, sizeof(m->cost_buf), "%.17g", d);
	} else {
		return;
	}
	m->cost = m->cost_buf;
}

/* organizationId by precedence: the call's assistantOverrides, the assistant, the call. */
static void read_meta_org(json_t *msg, struct vapi_msg *m)
{
	static const char *const paths[] = {
	    "call.assistantOverrides.metadata.organizationId",
	    "assistant.metadata.organizationId",
	    "call.metadata.organizationId",
	};
	static const char *const names[] = {"call.assistantOverrides.metadata",
	                                    "assistant.metadata", "call.metadata"};

	for (size_t i = 0; i < 3; i++) {
		m->meta_org_id = str_at(msg, paths[i]);
		if (m->meta_org_id != NULL) {
			m->meta_org_from = names[i];
			return;
		}
	}
}

static void read_fields(json_t *msg, struct vapi_msg *m)
{
	m->call_id = str_at(msg, "call.id");
	m->call_type = str_at(msg, "call.type");
	m->inbound = m->call_type != NULL && strcmp(m->call_type, "inboundPhoneCall") == 0;
	m->is_report = strcmp(m->type, "end-of-call-report") == 0;
	m->status = m->is_report                            ? "ended"
	            : strcmp(m->type, "status-update") == 0 ? str_at(msg, "status")
	                                                    : NULL;
	m->phone_number_id = first_str(msg, "call.phoneNumberId", "phoneNumber.id");
	m->assistant_id = first_str(msg, "call.assistantId", "assistant.id");
	m->customer_number = first_str(msg, "customer.number", "call.customer.number");
	m->ended_reason = str_at(msg, "endedReason");
	if (m->is_report) {
		/* Only the report's are final: a transcript message carries one remark as its
		 * top-level transcript, and mid-call messages a partial artifact. */
		m->transcript = first_str(msg, "artifact.transcript", "transcript");
		m->recording_url = first_str(msg, "artifact.recordingUrl", "recordingUrl");
		m->summary = first_str(msg, "analysis.summary", "summary");
	}
	m->timestamp_ms = time_at(msg, "timestamp");
	m->started_ms = time_at(msg, "startedAt");
	m->ended_ms = time_at(msg, "endedAt");
	read_cost(msg, m);
	read_meta_org(msg, m);
}

int vapi_msg_parse(const char *body, size_t len, struct vapi_msg *m, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *msg;

	memset(m, 0, sizeof(*m));
	m->root = json_loadb(body, len, 0, &jerr);
	if (m->root == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line,
		         jerr.column, jerr.text);
		return -1;
	}
	msg = json_object_get(m->root, "message");
	if (!json_is_object(msg)) {
		snprintf(err, errlen, "no \"message\" object");
		goto fail;
	}
	m->type = str_at(msg, "type");
	if (m->type == NULL) {
		snprintf(err, errlen, "no message.type");
		goto fail;
	}
	read_fields(msg, m);
	return 0;
fail:
	json_decref(m->root);
	m->root = NULL;
	return -1;
}

void vapi_msg_free(struct vapi_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->root);
	m->root = NULL;
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

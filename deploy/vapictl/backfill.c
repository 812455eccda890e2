/* Call object → end-of-call-report message. */
#include "backfill.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool backfill_call_ended(const json_t *call)
{
	const char *s = json_string_value(json_object_get(call, "status"));

	return s != NULL && strcmp(s, "ended") == 0;
}

/* Copies call[key] into msg[as] when present and not null. */
static int copy_field(json_t *msg, const char *as, const json_t *call, const char *key)
{
	json_t *v = json_object_get(call, key);

	if (v == NULL || json_is_null(v))
		return 0;
	return json_object_set_new(msg, as, json_deep_copy(v));
}

/* A string at call.artifact[key], else at call[key]. */
static json_t *artifact_str(const json_t *call, const char *key)
{
	json_t *v = json_object_get(json_object_get(call, "artifact"), key);

	if (!json_is_string(v))
		v = json_object_get(call, key);
	return json_is_string(v) ? v : NULL;
}

static int add_artifact(json_t *msg, const json_t *call)
{
	json_t *transcript = artifact_str(call, "transcript");
	json_t *recording = artifact_str(call, "recordingUrl");
	json_t *art;

	if (transcript == NULL && recording == NULL)
		return 0;
	art = json_object();
	if (art == NULL || json_object_set_new(msg, "artifact", art) != 0)
		return -1;
	if (transcript != NULL && json_object_set(art, "transcript", transcript) != 0)
		return -1;
	if (recording != NULL && json_object_set(art, "recordingUrl", recording) != 0)
		return -1;
	return 0;
}

static int add_analysis(json_t *msg, const json_t *call)
{
	json_t *summary = json_object_get(call, "summary");

	if (json_is_object(json_object_get(call, "analysis")))
		return copy_field(msg, "analysis", call, "analysis");
	if (!json_is_string(summary))
		return 0;
	return json_object_set_new(msg, "analysis", json_pack("{s:O}", "summary", summary));
}

/* phoneNumber {id}, the transient assistant if any, and the end time as timestamp. */
static int add_refs(json_t *msg, const json_t *call)
{
	const char *pn = json_string_value(json_object_get(call, "phoneNumberId"));
	const char *ended = json_string_value(json_object_get(call, "endedAt"));
	int64_t ms;

	if (pn != NULL &&
	    json_object_set_new(msg, "phoneNumber", json_pack("{s:s}", "id", pn)) != 0)
		return -1;
	/* A call made with an inline assistant carries it (and its metadata) in call.assistant. */
	if (json_is_object(json_object_get(call, "assistant")) &&
	    copy_field(msg, "assistant", call, "assistant") != 0)
		return -1;
	if (ended != NULL && util_parse_time_ms(ended, &ms) == 0)
		return json_object_set_new(msg, "timestamp", json_integer((json_int_t)ms));
	return 0;
}

json_t *backfill_message_new(const json_t *call, char *err, size_t errlen)
{
	static const char *const copied[] = {"startedAt", "endedAt", "endedReason", "cost",
	                                     "customer"};
	json_t *msg = NULL, *root;
	int rc = 0;

	if (!json_is_string(json_object_get(call, "id"))) {
		snprintf(err, errlen, "call without an id");
		return NULL;
	}
	root = json_pack("{s:{s:s, s:o}}", "message", "type", "end-of-call-report", "call",
	                 json_deep_copy(call));
	if (root != NULL)
		msg = json_object_get(root, "message");
	for (size_t i = 0; msg != NULL && i < sizeof(copied) / sizeof(copied[0]); i++)
		rc |= copy_field(msg, copied[i], call, copied[i]);
	if (msg == NULL || rc != 0 || add_artifact(msg, call) != 0 ||
	    add_analysis(msg, call) != 0 || add_refs(msg, call) != 0) {
		snprintf(err, errlen, "out of memory");
		json_decref(root);
		return NULL;
	}
	return root;
}

char *backfill_dumps(const json_t *msg)
{
	/* jansson writes every real with one precision: the smallest that keeps them all. */
	for (int digits = 15; digits < 17; digits++) {
		char *text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(digits));
		json_t *back = text != NULL ? json_loads(text, 0, NULL) : NULL;
		bool same = back != NULL && json_equal(back, msg);

		json_decref(back);
		if (same)
			return text;
		free(text);
	}
	return json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(17));
}

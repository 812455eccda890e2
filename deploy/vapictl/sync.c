/* Desired server configuration versus the current one: pure functions over jansson values. */
#include "sync.h"

#include <stdio.h>
#include <string.h>

/* The notifications this endpoint files, always in serverMessages. */
static const char *const base_messages[] = {"status-update", "end-of-call-report", "hang"};

/* Types whose sender waits for an answer (an assistant, tool results, a destination): a
 * notification endpoint cannot give one, so they are never pointed here. */
static const char *const answer_messages[] = {
    "assistant-request",
    "tool-calls",
    "function-call",
    "transfer-destination-request",
    "handoff-destination-request",
    "knowledge-base-request",
    "voice-request",
    "call.endpointing.request",
};

static const int backoff_excluded[] = SYNC_BACKOFF_EXCLUDED;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Equality where numbers compare by value (20 equals 20.0). */
static bool same_value(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return a != NULL && b != NULL && json_equal(a, b);
}

static bool contains(const json_t *set, const json_t *v)
{
	size_t i;
	json_t *x;

	json_array_foreach(set, i, x)
	{
		if (same_value(x, v))
			return true;
	}
	return false;
}

/* Whether arrays a and b hold the same values, in any order, duplicates aside. */
static bool same_set(const json_t *a, const json_t *b)
{
	size_t i;
	json_t *x;

	if (!json_is_array(a) || !json_is_array(b))
		return false;
	json_array_foreach(a, i, x)
	{
		if (!contains(b, x))
			return false;
	}
	json_array_foreach(b, i, x)
	{
		if (!contains(a, x))
			return false;
	}
	return true;
}

static int check_message_type(const char *t, char *err, size_t errlen)
{
	if (*t == '\0' || strpbrk(t, " \t\r\n\"\\") != NULL) {
		snprintf(err, errlen, "--messages: \"%s\" is not a message type", t);
		return -1;
	}
	for (size_t i = 0; i < COUNT(answer_messages); i++) {
		if (strcmp(t, answer_messages[i]) == 0) {
			snprintf(
			    err, errlen,
			    "--messages: %s expects an answer, which this notification endpoint "
			    "cannot give; point it at a server that can (a tool's or a phone "
			    "number's own server)",
			    t);
			return -1;
		}
	}
	return 0;
}

/* Appends the type t (n bytes) to d->messages unless present. */
static int add_message(struct sync_desired *d, const char *t, size_t n, char *err, size_t errlen)
{
	json_t *s = json_stringn(t, n);
	int rc = -1;

	if (s == NULL) {
		snprintf(err, errlen, "--messages: not UTF-8 text");
		return -1;
	}
	if (check_message_type(json_string_value(s), err, errlen) != 0)
		goto out;
	rc = 0;
	if (!contains(d->messages, s) && json_array_append(d->messages, s) != 0) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
out:
	json_decref(s);
	return rc;
}

static int add_extra(struct sync_desired *d, const char *extra, char *err, size_t errlen)
{
	const char *p = extra;

	while (p != NULL && *p != '\0') {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > p && add_message(d, p, (size_t)(end - p), err, errlen) != 0)
			return -1;
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

int sync_desired_init(struct sync_desired *d, const char *url, const char *secret_header,
                      const char *secret, long long timeout_seconds, const char *extra, char *err,
                      size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->url = url;
	d->secret_header = secret_header;
	d->secret = secret;
	d->timeout_seconds = timeout_seconds;
	d->messages = json_array();
	if (d->messages == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < COUNT(base_messages); i++) {
		if (add_message(d, base_messages[i], strlen(base_messages[i]), err, errlen) != 0)
			return -1;
	}
	return add_extra(d, extra, err, errlen);
}

void sync_desired_free(struct sync_desired *d)
{
	if (d == NULL)
		return;
	json_decref(d->messages);
	d->messages = NULL;
}

static json_t *backoff_new(void)
{
	json_t *codes = json_array();

	for (size_t i = 0; codes != NULL && i < COUNT(backoff_excluded); i++) {
		if (json_array_append_new(codes, json_integer(backoff_excluded[i])) != 0) {
			json_decref(codes);
			return NULL;
		}
	}
	return json_pack("{s:s, s:i, s:i, s:o}", "type", SYNC_BACKOFF_TYPE, "maxRetries",
	                 SYNC_BACKOFF_MAX_RETRIES, "baseDelaySeconds", SYNC_BACKOFF_BASE_DELAY_S,
	                 "excludedStatusCodes", codes);
}

json_t *sync_server_new(const struct sync_desired *d)
{
	return json_pack("{s:s, s:I, s:{s:s}, s:o}", "url", d->url, "timeoutSeconds",
	                 (json_int_t)d->timeout_seconds, "headers", d->secret_header, d->secret,
	                 "backoffPlan", backoff_new());
}

/* Whether headers is exactly {<secret header>: <secret>}. */
static bool headers_right(const struct sync_desired *d, const json_t *headers)
{
	const char *v = json_string_value(json_object_get(headers, d->secret_header));

	return json_object_size(headers) == 1 && v != NULL && strcmp(v, d->secret) == 0;
}

/* Whether plan has the desired values; keys the API may add are not looked at. */
static bool backoff_right(const json_t *plan)
{
	json_t *want = backoff_new();
	bool ok = want != NULL && json_is_object(plan);
	const char *key;
	json_t *v;

	json_object_foreach(want, key, v)
	{
		json_t *have = json_object_get(plan, key);

		if (ok && !(json_is_array(v) ? same_set(v, have) : same_value(v, have)))
			ok = false;
	}
	json_decref(want);
	return ok;
}

static unsigned server_diff(const struct sync_desired *d, const json_t *server)
{
	const char *url = json_string_value(json_object_get(server, "url"));
	json_t *timeout = json_object_get(server, "timeoutSeconds");
	unsigned diff = 0;

	if (url == NULL || strcmp(url, d->url) != 0)
		diff |= SYNC_D_URL;
	if (!headers_right(d, json_object_get(server, "headers")))
		diff |= SYNC_D_HEADERS;
	if (!json_is_number(timeout) || json_number_value(timeout) != (double)d->timeout_seconds)
		diff |= SYNC_D_TIMEOUT;
	if (!backoff_right(json_object_get(server, "backoffPlan")))
		diff |= SYNC_D_BACKOFF;
	return diff;
}

unsigned sync_diff(const struct sync_desired *d, enum sync_kind kind, const json_t *resource)
{
	unsigned diff = server_diff(d, json_object_get(resource, "server"));

	if (kind == SYNC_ASSISTANT &&
	    !same_set(d->messages, json_object_get(resource, "serverMessages")))
		diff |= SYNC_D_MESSAGES;
	return diff;
}

json_t *sync_patch_body_new(const struct sync_desired *d, enum sync_kind kind,
                            const json_t *resource, char *err, size_t errlen)
{
	const char *provider = json_string_value(json_object_get(resource, "provider"));
	json_t *body;

	if (kind == SYNC_ASSISTANT) {
		body = json_pack("{s:o, s:o}", "server", sync_server_new(d), "serverMessages",
		                 json_deep_copy(d->messages));
	} else if (provider == NULL) {
		snprintf(err, errlen, "the phone number has no provider, which PATCH requires");
		return NULL;
	} else {
		body = json_pack("{s:s, s:o}", "provider", provider, "server", sync_server_new(d));
	}
	if (body == NULL)
		snprintf(err, errlen, "out of memory");
	return body;
}

const char *sync_diff_names(unsigned diff, char *buf, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	    {SYNC_D_URL, "url"},
	    {SYNC_D_HEADERS, "headers"},
	    {SYNC_D_TIMEOUT, "timeoutSeconds"},
	    {SYNC_D_BACKOFF, "backoffPlan"},
	    {SYNC_D_MESSAGES, "serverMessages"},
	};
	size_t n = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < COUNT(names); i++) {
		if ((diff & names[i].bit) && n < size)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "," : "",
			                      names[i].name);
	}
	return buf;
}

const char *sync_server_url(const json_t *resource)
{
	return json_string_value(json_object_get(json_object_get(resource, "server"), "url"));
}

bool sync_phone_unassigned(const json_t *phone)
{
	static const char *const keys[] = {"assistantId", "squadId", "workflowId"};

	for (size_t i = 0; i < COUNT(keys); i++) {
		const char *v = json_string_value(json_object_get(phone, keys[i]));

		if (v != NULL && *v != '\0')
			return false;
	}
	return true;
}

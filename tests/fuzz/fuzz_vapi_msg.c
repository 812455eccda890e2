/* libFuzzer target: vapi_msg_parse() on arbitrary bodies, then vapi_msg_dedupe_key() into
 * buffers of several sizes. A parse that succeeds must have a type; one that fails must
 * leave a terminated reason and nothing to free. Every string field is read in full, so
 * that a field pointing outside the parsed document is caught. The one-pass scanner must
 * call a body JSON exactly when jansson does, and read the same type. */
#include "vapi_msg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FALLBACK_ID "1700000000000-0"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Where string lengths go, so that reading them is not optimised away. */
static volatile size_t sink;

static void touch(const char *s)
{
	sink += s != NULL ? strlen(s) : 0;
}

static void read_all(const struct vapi_msg *m)
{
	static const size_t sizes[] = {1, 2, 8, 64};
	char key[64];
	const char *const fields[] = {
	    m->type,
	    m->call_id,
	    m->call_type,
	    m->status,
	    m->phone_number_id,
	    m->assistant_id,
	    m->customer_number,
	    m->meta_org_id,
	    m->meta_org_from,
	    m->ended_reason,
	    m->transcript,
	    m->recording_url,
	    m->summary,
	    m->cost,
	};

	if (m->type == NULL || m->arena == NULL)
		abort();
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		touch(fields[i]);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const char *k = vapi_msg_dedupe_key(m, FALLBACK_ID, key, sizes[i]);

		if (k != key || strlen(key) >= sizes[i])
			abort();
	}
}

/* jansson's verdict on the same bytes: JSON or not, and message.type. */
static void against_jansson(const unsigned char *data, size_t size, const struct vapi_msg *m,
                            int parsed, const char *err)
{
	json_t *root = json_loadb((const char *)data, size, 0, NULL);
	json_t *type = json_object_get(json_object_get(root, "message"), "type");
	int invalid = !parsed && strncmp(err, "invalid JSON", 12) == 0;

	/* jansson drops a NUL byte that follows a number or a literal ("[1\0]" loads as [1]);
	 * PostgreSQL refuses such a body, and so does the scanner: no reference there. */
	if ((root == NULL) != invalid && memchr(data, '\0', size) == NULL)
		abort();
	if (parsed && root != NULL &&
	    (!json_is_string(type) || strcmp(json_string_value(type), m->type) != 0))
		abort();
	json_decref(root);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct vapi_msg m;
	char err[256];

	err[0] = '\0';
	if (vapi_msg_parse((const char *)data, size, &m, err, sizeof(err)) != 0) {
		if (m.arena != NULL || err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		against_jansson(data, size, &m, 0, err);
		vapi_msg_free(&m);
		return 0;
	}
	against_jansson(data, size, &m, 1, err);
	read_all(&m);
	vapi_msg_free(&m);
	vapi_msg_free(NULL);
	return 0;
}

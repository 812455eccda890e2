/* libFuzzer target: vapi_msg_parse() on arbitrary bodies, then vapi_msg_dedupe_key() into
 * buffers of several sizes. A parse that succeeds must have a type; one that fails must
 * leave a terminated reason and nothing to free. Every string field is read in full, so
 * that a field pointing outside the parsed document is caught. */
#include "vapi_msg.h"

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

	if (m->type == NULL || m->root == NULL)
		abort();
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		touch(fields[i]);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const char *k = vapi_msg_dedupe_key(m, FALLBACK_ID, key, sizes[i]);

		if (k != key || strlen(key) >= sizes[i])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct vapi_msg m;
	char err[256];

	err[0] = '\0';
	if (vapi_msg_parse((const char *)data, size, &m, err, sizeof(err)) != 0) {
		if (m.root != NULL || err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		vapi_msg_free(&m);
		return 0;
	}
	read_all(&m);
	vapi_msg_free(&m);
	vapi_msg_free(NULL);
	return 0;
}

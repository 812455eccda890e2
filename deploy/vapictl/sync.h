#ifndef VCTL_SYNC_H
#define VCTL_SYNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The desired server configuration of assistants and phone numbers, and how a resource as
 * the API lists it differs from it. Plain data in, plain data out: no I/O.
 *
 * Desired: server = {url, timeoutSeconds, headers: {<secret header>: <secret>}, backoffPlan}
 * and, for assistants, serverMessages = the notifications this endpoint stores. The whole
 * server object is always sent (whether PATCH merges or replaces it is not documented), so
 * the comparison looks only at the keys we send: it converges whichever the API does. */

enum sync_kind { SYNC_ASSISTANT, SYNC_PHONE_NUMBER };

/* What differs, as bits of sync_diff()'s result. */
#define SYNC_D_URL 0x01u      /* server.url */
#define SYNC_D_HEADERS 0x02u  /* server.headers (the secret) */
#define SYNC_D_TIMEOUT 0x04u  /* server.timeoutSeconds */
#define SYNC_D_BACKOFF 0x08u  /* server.backoffPlan */
#define SYNC_D_MESSAGES 0x10u /* serverMessages (assistants only) */

/* Vapi's default delivery timeout, used unless configured otherwise. */
#define SYNC_TIMEOUT_DEFAULT_S 20
/* backoffPlan: Vapi retries a failed delivery after 1, 2, 4, 8 and 16 s. */
#define SYNC_BACKOFF_TYPE "exponential"
#define SYNC_BACKOFF_MAX_RETRIES 5
#define SYNC_BACKOFF_BASE_DELAY_S 1
/* Answers a retry cannot change (ingest's 400 empty body, 401 secret, 404 path, 405 method,
 * 413 too large, and 403 from a proxy): not retried. 5xx, 408, 429 and timeouts are. */
#define SYNC_BACKOFF_EXCLUDED                                                                      \
	{                                                                                          \
		400, 401, 403, 404, 405, 413                                                       \
	}

struct sync_desired {
	const char *url;           /* webhook URL, borrowed */
	const char *secret_header; /* header name, borrowed */
	const char *secret;        /* header value, borrowed */
	long long timeout_seconds; /* server.timeoutSeconds */
	json_t *messages;          /* serverMessages: array of strings, owned */
};

/* Fills d (url, secret_header and secret are borrowed and must outlive d) with
 * serverMessages = status-update, end-of-call-report, hang and the comma-separated types in
 * extra (NULL or "" for none). Refuses types that expect an answer (assistant-request,
 * tool-calls, ...): this endpoint only files notifications. Returns 0, or -1 with the reason
 * in err. Release with sync_desired_free(), also after a failure. */
int sync_desired_init(struct sync_desired *d, const char *url, const char *secret_header,
                      const char *secret, long long timeout_seconds, const char *extra, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/* Releases what d owns (NULL-safe). */
void sync_desired_free(struct sync_desired *d);

/* Returns the desired server object (a new reference), or NULL when out of memory. */
json_t *sync_server_new(const struct sync_desired *d);

/* Compares resource (an assistant or phone number object as listed, borrowed) with d.
 * Returns 0 when it is right, else SYNC_D_* bits. */
unsigned sync_diff(const struct sync_desired *d, enum sync_kind kind, const json_t *resource);

/* Returns the PATCH body that makes resource right (a new reference): {server,
 * serverMessages} for an assistant, {provider, server} for a phone number. NULL with the
 * reason in err for a phone number without provider, or when out of memory. */
json_t *sync_patch_body_new(const struct sync_desired *d, enum sync_kind kind,
                            const json_t *resource, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Writes the names of the SYNC_D_* bits in diff, comma-separated ("url,headers"), into buf.
 * Returns buf. */
const char *sync_diff_names(unsigned diff, char *buf, size_t size);

/* The resource's current server.url (borrowed), or NULL when it has none. */
const char *sync_server_url(const json_t *resource);

/* True for a phone number with no assistantId, squadId or workflowId: Vapi then asks its
 * server URL which assistant answers (assistant-request), which a notification endpoint
 * cannot answer, so moving such a number's URL would break its inbound calls. */
bool sync_phone_unassigned(const json_t *phone);

#endif

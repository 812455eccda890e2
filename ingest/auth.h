#ifndef SB_AUTH_H
#define SB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* Request authentication, free of any HTTP library: the caller hands over the header
 * values it found. */

enum auth_result {
	AUTH_OK,
	AUTH_MISSING,  /* no credential offered */
	AUTH_MISMATCH, /* a credential that is not ours */
	AUTH_DISABLED, /* authentication is turned off: accepted */
};

struct auth_cfg {
	const char *secret; /* expected shared secret, borrowed; NULL or "" with disabled */
	bool disabled;      /* accept everything (INGEST_AUTH_DISABLED) */
};

/* Checks the shared-secret header value offered (NULL when absent), in constant time with
 * respect to the secret's content. */
enum auth_result auth_check_secret(const struct auth_cfg *a, const char *offered);

/* "ok", "missing", "mismatch" or "disabled": the reason label for logs and metrics. */
const char *auth_result_name(enum auth_result r);

#endif

/* Shared-secret authentication of webhook requests. */
#include "auth.h"

#include "util.h"

#include <string.h>

enum auth_result auth_check_secret(const struct auth_cfg *a, const char *offered)
{
	if (a->disabled)
		return AUTH_DISABLED;
	if (offered == NULL || *offered == '\0')
		return AUTH_MISSING;
	if (!util_ct_equal(offered, strlen(offered), a->secret, strlen(a->secret)))
		return AUTH_MISMATCH;
	return AUTH_OK;
}

const char *auth_result_name(enum auth_result r)
{
	static const char *const names[] = {"ok", "missing", "mismatch", "disabled"};

	return names[r];
}

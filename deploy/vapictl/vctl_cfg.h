#ifndef VCTL_CFG_H
#define VCTL_CFG_H

#include "cfg.h"

#include <stddef.h>
#include <stdio.h>

/* vapictl's settings, from environment variables only. Secrets (the Vapi API key, the
 * webhook secret) may also come from a file named by NAME_FILE, and never from the command
 * line, where other users of the machine could read them. */

/* What a command needs besides the API key. */
#define VCTL_NEED_SECRET 1u /* WEBHOOK_SECRET (sync, create, org set-server) */
#define VCTL_NEED_REDIS 2u  /* Redis and the stream shards (backfill) */
#define VCTL_NEED_DB 4u     /* DATABASE_URL (routing import) */

struct vctl_cfg {
	char *api_key;             /* VAPI_API_KEY or VAPI_API_KEY_FILE */
	char *secret;              /* WEBHOOK_SECRET or WEBHOOK_SECRET_FILE; NULL when unset */
	char *secret_header;       /* WEBHOOK_SECRET_HEADER */
	char *base_url;            /* VAPI_BASE_URL, without a trailing slash */
	char *webhook_url;         /* VAPI_WEBHOOK_URL; NULL when unset */
	long long timeout_seconds; /* VAPI_WEBHOOK_TIMEOUT_SECONDS */
	char *database_url;        /* DATABASE_URL */
	struct cfg
	    redis; /* with VCTL_NEED_REDIS: REDIS_*, SWITCHBOARD_STREAM and SWITCHBOARD_SHARDS,
	              read and checked by the binaries' own table (cfg.c, CFG_VAPICTL) */
};

struct vctl_cfg_error {
	char errstr[512]; /* names the variable and what it accepts */
};

/* Fills c from the environment. `need` (VCTL_NEED_*) says which otherwise optional settings
 * are required. Returns 0, or -1 with err naming the variable. Strings in c are owned by c:
 * release with vctl_cfg_free(), also after a failure. */
int vctl_cfg_load(struct vctl_cfg *c, unsigned need, struct vctl_cfg_error *err)
    __attribute__((warn_unused_result));

/* Checks that v is an http:// or https:// URL on one line. Returns 0, or -1 with the reason
 * in why. */
int vctl_cfg_check_url(const char *v, char *why, size_t n) __attribute__((warn_unused_result));

/* Releases the strings of c (NULL-safe). */
void vctl_cfg_free(struct vctl_cfg *c);

/* Writes the variables with their meaning and defaults to fp (for --help). */
void vctl_cfg_usage(FILE *fp);

#endif

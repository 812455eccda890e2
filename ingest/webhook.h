#ifndef SB_WEBHOOK_H
#define SB_WEBHOOK_H

#include "auth.h"
#include "cfg.h"

/* The HTTP service: POST /api/vapi/webhook, /healthz, /metrics. */

struct ingest; /* opaque: the running server */

/* Builds the authentication settings from c (strings borrowed from c). Returns 0, or -1
 * with err naming the variable that is wrong. Free with auth_cfg_free_networks(). */
int webhook_auth_init(struct auth_cfg *a, const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Starts the listener and its threads with the settings in c (borrowed: must outlive the
 * server). Returns the server, or NULL with the reason in err. */
struct ingest *ingest_start(const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops accepting, lets requests in flight finish, frees everything (NULL-safe). */
void ingest_stop(struct ingest *in);

#endif

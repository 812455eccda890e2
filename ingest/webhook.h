#ifndef SB_WEBHOOK_H
#define SB_WEBHOOK_H

#include "cfg.h"

/* The HTTP service: POST /api/vapi/webhook, /healthz, /metrics. */

struct ingest; /* opaque: the running server */

/* Starts the listener and its threads with the settings in c (borrowed: must outlive the
 * server). Returns the server, or NULL with the reason in err. */
struct ingest *ingest_start(const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops accepting, lets requests in flight finish, frees everything (NULL-safe). */
void ingest_stop(struct ingest *in);

#endif

#ifndef VCTL_CMD_BACKFILL_H
#define VCTL_CMD_BACKFILL_H

#include "vctl.h"

/* `vapictl backfill --since TIME [--until TIME]`: lists the calls created in that window
 * (GET /call, createdAtGt/createdAtLt) and, for each ended one, adds to the stream the
 * end-of-call-report Vapi would have sent, as the entry ingest writes (body, received_at,
 * request_id "backfill-<call id>", source "backfill"). Workers file them like any delivery;
 * idempotent writes make overlap with delivered reports harmless. --dry-run lists what
 * would be added. Returns a VCTL_EXIT_* code. */
int cmd_backfill(struct vctl *v) __attribute__((warn_unused_result));

#endif

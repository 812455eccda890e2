#ifndef VCTL_CMD_SYNC_H
#define VCTL_CMD_SYNC_H

#include "sync.h"
#include "vctl.h"

/* `vapictl assistants|phone-numbers list`: every item with its server URL and whether it
 * matches the desired URL (--url or VAPI_WEBHOOK_URL), and, when WEBHOOK_SECRET is set,
 * whether its whole server configuration is right. A table, or JSON with --json. Returns a
 * VCTL_EXIT_* code. */
int cmd_list(struct vctl *v, enum sync_kind kind) __attribute__((warn_unused_result));

/* `vapictl assistants|phone-numbers sync`: PATCHes every item whose server configuration
 * differs from the desired one and skips those already right; with --dry-run only prints
 * the plan. Phone numbers without an assistant, squad or workflow keep their server URL
 * unless --include-unassigned. Ends with a summary line; returns VCTL_EXIT_FAILED when any
 * item failed or the listing stopped, else VCTL_EXIT_OK (VCTL_EXIT_USAGE for bad options). */
int cmd_sync(struct vctl *v, enum sync_kind kind) __attribute__((warn_unused_result));

#endif

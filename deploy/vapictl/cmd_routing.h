#ifndef VCTL_CMD_ROUTING_H
#define VCTL_CMD_ROUTING_H

#include "vctl.h"

/* routing import --dry-run | --apply: fills the assistants and phone_numbers tables
 * (DATABASE_URL) from Vapi (see routing.h for the rules). Adds rows only; conflicts are
 * printed and make the exit code VCTL_EXIT_FAILED. */
int cmd_routing_import(struct vctl *v) __attribute__((warn_unused_result));

#endif

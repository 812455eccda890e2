#ifndef VCTL_CMD_ORG_H
#define VCTL_CMD_ORG_H

#include "vctl.h"

/* `vapictl org set-server --url URL`: sets the organization-level server (the fallback for
 * assistants and phone numbers without one). The API has no documented route for it, so
 * this tries PATCH /org/{id} with {server} (the id from --org-id, else from GET /org) and
 * checks that it took. Where the API refuses, or accepts without effect, prints the
 * dashboard steps and returns VCTL_EXIT_MANUAL. Returns a VCTL_EXIT_* code. */
int cmd_org(struct vctl *v) __attribute__((warn_unused_result));

#endif

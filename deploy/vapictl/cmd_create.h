#ifndef VCTL_CMD_CREATE_H
#define VCTL_CMD_CREATE_H

#include "vctl.h"

/* `vapictl assistants create --file FILE`: POSTs the assistant in FILE with the desired
 * server configuration and serverMessages put in. Refuses a file whose server.url points
 * elsewhere (unless --keep-server, which sends the file's server and serverMessages as they
 * are) and one with the retired serverUrl/serverUrlSecret fields. Prints the new id, or the
 * created assistant with --json. Returns a VCTL_EXIT_* code. */
int cmd_create(struct vctl *v) __attribute__((warn_unused_result));

#endif

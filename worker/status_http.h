#ifndef SB_STATUS_HTTP_H
#define SB_STATUS_HTTP_H

#include "status.h"

struct mg_context;

/* Adds the status page (/), its login form (/login) and its JSON API (/api/status,
 * /api/calls/{id}) to a civetweb listener. With a non-empty token the page and the API
 * require it: "Authorization: Bearer TOKEN", or the cookie the login form sets. Every route
 * only reads. status and token are borrowed for the listener's life. */
void status_http_register(struct mg_context *ctx, struct status *status, const char *token);

#endif

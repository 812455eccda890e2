#ifndef SB_STATUS_HTTP_H
#define SB_STATUS_HTTP_H

#include "admin.h"
#include "status.h"

#include <stddef.h>

/* The worker's own routes on its admin listener: the status page (/), its sign-in form
 * (/login) and its JSON API (/api/status, /api/calls/{id}). Their source's arg is the
 * struct status they read. With ADMIN_TOKEN set, the page shows the sign-in form and the
 * API answers 401 until the request carries the token; every route only reads. */
extern const struct admin_route status_http_routes[];
extern const size_t status_http_nroutes;

#endif

#ifndef SB_PGFAIL_H
#define SB_PGFAIL_H

#include <stdbool.h>

/* Whether a failed PostgreSQL connect is an outage (retry) or a setting to fix: a database
 * that does not exist, a wrong password or role, a refused pg_hba entry, a DATABASE_URL
 * libpq cannot parse. The server's verdict arrives only as libpq's message text (no
 * SQLSTATE before a connection exists): a FATAL from the server is taken as permanent except
 * the few that pass (starting up, shutting down, recovery, too many clients). */
bool pgfail_is_setting(const char *conninfo, const char *libpq_text);

#endif

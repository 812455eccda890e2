/* Versioned schema migrations, tracked in schema_migrations. */
#include "migrate.h"

#include "log.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

/* Any fixed number: the advisory lock all migrating processes queue on. */
#define MIGRATE_LOCK_KEY 7262793

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType t = PQresultStatus(r);

	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = ' ';
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

static int is_applied(PGconn *conn, const char *version, int *yes, char *err, size_t errlen)
{
	const char *p[1] = {version};
	PGresult *r = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
	                           NULL, p, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	*yes = PQntuples(r) > 0;
	PQclear(r);
	return 0;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	const char *p[1] = {m->version};
	PGresult *r;

	if (exec_ok(conn, "BEGIN", err, errlen) != 0)
		return -1;
	if (exec_ok(conn, m->sql, err, errlen) != 0)
		goto fail;
	r = PQexecParams(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL, p,
	                 NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return exec_ok(conn, "COMMIT", err, errlen);
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

static int apply_all(PGconn *conn, unsigned *applied, char *err, size_t errlen)
{
	for (unsigned i = 0; i < migrations_count; i++) {
		int yes;
		char why[400];

		if (is_applied(conn, migrations[i].version, &yes, err, errlen) != 0)
			return -1;
		if (yes)
			continue;
		if (apply_one(conn, &migrations[i], why, sizeof(why)) != 0) {
			snprintf(err, errlen, "migration %s: %s", migrations[i].version, why);
			return -1;
		}
		log_info("applied migration %s", migrations[i].version);
		(*applied)++;
	}
	return 0;
}

int migrate_apply(const char *conninfo, unsigned *applied, char *err, size_t errlen)
{
	char lock[96];
	PGconn *conn = PQconnectdb(conninfo);
	int rc = -1;

	*applied = 0;
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(conn));
		goto out;
	}
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK_KEY);
	if (exec_ok(conn, "SET client_min_messages = warning", err, errlen) != 0 ||
	    exec_ok(conn, lock, err, errlen) != 0)
		goto out;
	if (exec_ok(conn,
	            "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY,"
	            " applied_at timestamptz NOT NULL DEFAULT now())",
	            err, errlen) == 0)
		rc = apply_all(conn, applied, err, errlen);
	/* The lock is released with the session in any case; unlock explicitly anyway. */
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%d)", MIGRATE_LOCK_KEY);
	PQclear(PQexec(conn, lock));
out:
	for (char *p = err; rc != 0 && *p; p++)
		if (*p == '\n')
			*p = ' ';
	PQfinish(conn);
	return rc;
}

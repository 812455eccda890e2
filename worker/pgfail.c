/* Telling an unreachable PostgreSQL from a DATABASE_URL that can never work. */
#include "pgfail.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <string.h>

/* FATAL messages of a server that is there but cannot take a connection right now
 * (SQLSTATE 57P01-57P03, 53300, 53200 and fork failures). */
static const char *const transient[] = {
    "the database system is", "too many clients", "connection slots are reserved",
    "administrator command",  "out of memory",    "could not fork",
};

/* Messages libpq writes itself about credentials it lacks. */
static const char *const client_side[] = {"no password supplied", "password is required"};

static bool contains_any(const char *text, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(text, words[i]) != NULL)
			return true;
	return false;
}

bool pgfail_is_setting(const char *conninfo, const char *libpq_text)
{
	PQconninfoOption *opts;
	char *why = NULL;

	opts = PQconninfoParse(conninfo != NULL ? conninfo : "", &why);
	PQconninfoFree(opts);
	if (opts == NULL) {
		PQfreemem(why);
		return true;
	}
	if (libpq_text == NULL)
		return false;
	if (contains_any(libpq_text, client_side, sizeof(client_side) / sizeof(client_side[0])))
		return true;
	return strstr(libpq_text, "FATAL:") != NULL &&
	       !contains_any(libpq_text, transient, sizeof(transient) / sizeof(transient[0]));
}

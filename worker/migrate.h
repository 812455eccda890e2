#ifndef SB_MIGRATE_H
#define SB_MIGRATE_H

#include <stddef.h>

/* One versioned SQL migration, compiled in from deploy/sql/NNNN_name.sql. */
struct migration {
	const char *version; /* file name without .sql; applied in this order */
	const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migrations_count;

/* Applies every migration not yet recorded in schema_migrations, each in its own
 * transaction, under an advisory lock so that workers starting together apply each once.
 * *applied counts those applied now. Returns 0, or -1 with the reason in err. */
int migrate_apply(const char *conninfo, unsigned *applied, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

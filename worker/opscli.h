#ifndef SB_OPSCLI_H
#define SB_OPSCLI_H

#include "consumer.h"

#include <stdbool.h>
#include <stdint.h>

/* The command line of the operator commands: options, --help, --timeout, and the one-line
 * reason a command exits with when a server cannot be reached. */

/* How long an operator command waits for Redis or PostgreSQL to answer. */
#define OPS_TIMEOUT_DEFAULT_MS 10000
/* The --timeout line every usage text ends with. */
#define OPS_TIMEOUT_HELP                                                                           \
	"  --timeout D     how long to wait for Redis and PostgreSQL to answer (default 10s);\n"   \
	"                  exit 1 with the reason when one does not\n"

/* One option of a command: "--name VALUE" (value != NULL) or "--name" (flag != NULL). */
struct ops_opt {
	const char *name;
	const char **value;
	int *flag;
};

/* What a command accepts, and what ops_parse() found. */
struct ops_args {
	const char *usage;          /* the command's --help text (borrowed) */
	const struct ops_opt *opts; /* ends with {NULL} (borrowed) */
	const char **pos;           /* receives the words that are not options (borrowed) */
	int npos;                   /* room in pos */
	int nposv;                  /* out: words stored in pos */
	long long timeout_ms; /* in: the default (0: OPS_TIMEOUT_DEFAULT_MS); out: --timeout */
};

/* Parses argv[1..argc) (argv[0] is the command's name) against a. Returns 0; 1 after printing
 * a->usage to stdout for --help or -h (exit 0); -1 after printing what is wrong to stderr
 * (exit 2). */
int ops_parse(int argc, char **argv, struct ops_args *a) __attribute__((warn_unused_result));

/* Parses a TIME option (ISO-8601 or epoch milliseconds); prints the error. Returns 0 or -1. */
int ops_time_opt(const char *cmd, const char *name, const char *v, int64_t *ms)
    __attribute__((warn_unused_result));

/* Prepares c for an operator command that waits at most timeout_ms per connect, and
 * connects to Redis, and to PostgreSQL too when pg. Returns 0, or the exit code (1) after
 * printing "CMD: <reason>" on stderr; c is then closed. */
int ops_connect(struct consumer *c, const struct cfg *cfg, volatile sig_atomic_t *stop,
                const char *cmd, long long timeout_ms, bool pg) __attribute__((warn_unused_result));

/* After a failed consumer_redis_up()/consumer_pg_up() mid-command: prints "CMD: <reason>"
 * and returns the exit code 1. */
int ops_fail(const struct consumer *c, const char *cmd);

#endif

#ifndef SB_OPS_H
#define SB_OPS_H

#include "cfg.h"

#include <signal.h>

/* Operator commands of switchboard-worker. Each takes the words after the command name
 * (argv[0] is the command) and returns the process exit code; usage errors are 2. */

/* drain [--timeout DURATION]: consume until the group has no lag and nothing pending. */
int ops_drain(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* replay --since TIME [--until TIME] [--org ID] [--type TYPE] [--dry-run]. */
int ops_replay(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* status [--json]: stream, group, consumers, dead letters, unrouted. */
int ops_status(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* reroute: route the parked messages again, once. */
int ops_reroute(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* dlq list [--limit N] | show ID | redrive ID...|--all | purge --before TIME. */
int ops_dlq(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* One option of a command: "--name VALUE" (value != NULL) or "--name" (flag != NULL). */
struct ops_opt {
	const char *name;
	const char **value;
	int *flag;
};

/* Parses argv[1..argc) against opts; other words go to pos (at most npos, counted in
 * *nposp). Returns 0, or -1 after printing what is wrong to stderr. */
int ops_parse(int argc, char **argv, const struct ops_opt *opts, const char **pos, int npos,
              int *nposp) __attribute__((warn_unused_result));

#endif

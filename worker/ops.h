#ifndef SB_OPS_H
#define SB_OPS_H

#include "cfg.h"

#include <signal.h>

/* Operator commands of switchboard-worker. Each takes the words after the command name
 * (argv[0] is the command) and returns the process exit code: 0; 1 when it failed or a
 * server stayed unreachable for its --timeout (the reason on stderr, one line); 2 for a
 * usage error. Each answers --help with its own usage on stdout (exit 0). */

/* drain [--timeout DURATION]: consume until the group has no lag and nothing pending. */
int ops_drain(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* replay --since TIME [--until TIME] [--org ID] [--type TYPE] [--dry-run]. */
int ops_replay(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* status [--json]: stream, group, consumers, dead letters, unrouted. */
int ops_status(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* reroute: route the parked messages again, once. */
int ops_reroute(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

/* dlq list | show | edit | redrive | delete | purge (dlq.c, dlqfix.c). */
int ops_dlq(const struct cfg *c, volatile sig_atomic_t *stop, int argc, char **argv);

#endif

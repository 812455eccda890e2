#ifndef SB_DLQFIX_H
#define SB_DLQFIX_H

#include "consumer.h"

/* Putting dead letters back into the main stream: redrive (as they are) and edit (after
 * fixing the body). Each takes the subcommand's words (argv[0] is its name) on a consumer
 * connected to Redis and returns the exit code. */

/* dlq redrive ID... | --all | [--reason TEXT] [--since TIME] [--until TIME] [--limit N]. */
int dlqfix_redrive(struct consumer *c, int argc, char **argv, long long timeout_ms);

/* dlq edit ID. */
int dlqfix_edit(struct consumer *c, int argc, char **argv, long long timeout_ms);

/* Their --help texts. */
extern const char dlqfix_redrive_usage[];
extern const char dlqfix_edit_usage[];

#endif

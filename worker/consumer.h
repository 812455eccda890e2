#ifndef SB_CONSUMER_H
#define SB_CONSUMER_H

#include "cfg.h"

#include <signal.h>

/* The worker's main loop: read batches from the consumer group, write them to PostgreSQL
 * in one transaction each, dead-letter what cannot be stored, then XACK. Rides out Redis
 * and PostgreSQL outages by reconnecting with backoff. Returns when *stop becomes non-zero
 * (after finishing and acknowledging the batch in hand): 0, or 1 on a fatal set-up error. */
int consumer_run(const struct cfg *c, volatile sig_atomic_t *stop);

#endif

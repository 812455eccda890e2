#ifndef VCTL_BACKFILL_H
#define VCTL_BACKFILL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A call object from GET /call turned into the end-of-call-report Vapi would have sent for
 * it, so a call whose delivery was lost can be filed like any other. No I/O. */

/* True when call.status is "ended": only those have a report. */
bool backfill_call_ended(const json_t *call);

/* Returns {"message": {"type": "end-of-call-report", "call", "startedAt", "endedAt",
 * "endedReason", "cost", "artifact": {transcript, recordingUrl}, "analysis", "customer",
 * "phoneNumber": {"id"}, "assistant", "timestamp"}} built from call (borrowed; copied), with
 * only the fields the call has. Transcript and recording come from call.artifact, else from
 * the legacy call.transcript and call.recordingUrl; the summary from call.analysis, else
 * call.summary; timestamp is endedAt in epoch ms. Returns a new reference, or NULL with the
 * reason in err (a call without id, or out of memory). */
json_t *backfill_message_new(const json_t *call, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Returns msg as compact JSON text (free()), with each real number in the fewest digits
 * (15 to 17) that read back as the same value, as Vapi writes them; NULL when out of
 * memory. */
char *backfill_dumps(const json_t *msg) __attribute__((warn_unused_result));

#endif

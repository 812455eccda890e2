#ifndef SB_VAPI_MSG_H
#define SB_VAPI_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The facts a worker needs from one Vapi server message ({"message": {...}}). String
 * fields borrow from arena (or json) and live as long as the struct; NULL when absent. */
struct vapi_msg {
	char *arena;                 /* the strings below, owned */
	char *json;                  /* the JSON texts below (metadata, analysis), owned */
	const char *type;            /* message.type */
	const char *call_id;         /* message.call.id */
	const char *call_type;       /* inboundPhoneCall, outboundPhoneCall, webCall, ... */
	const char *status;          /* status-update: message.status; report: "ended" */
	const char *phone_number_id; /* message.call.phoneNumberId or message.phoneNumber.id */
	const char *assistant_id;    /* message.call.assistantId or message.assistant.id */
	const char *customer_number; /* message.customer.number or message.call.customer.number */
	const char *meta_org_id;     /* organizationId from the first metadata that has one */
	const char *meta_org_from;   /* which metadata it came from, for logs and reasons */
	const char *ended_reason;    /* message.endedReason */
	const char *transcript;      /* artifact.transcript, else top-level transcript */
	const char *recording_url;   /* artifact.recordingUrl, else top-level recordingUrl */
	const char *summary;         /* analysis.summary, else top-level summary */
	const char *cost;            /* message.cost as decimal text, NULL when absent */
	const char *metadata;        /* JSON of the metadata meta_org_id came from, else of the
	                              * first metadata object, in the same precedence */
	const char *structured_data; /* report: JSON of analysis.structuredData */
	const char *success_evaluation; /* report: analysis.successEvaluation, a string as
	                                 * its text, another value as its JSON */
	char cost_buf[40];              /* backing store for cost */
	int64_t timestamp_ms;           /* message.timestamp (ms or ISO-8601), 0 when absent */
	int64_t started_ms;             /* message.startedAt, 0 when absent */
	int64_t ended_ms;               /* message.endedAt, 0 when absent */
	bool is_report;                 /* type is end-of-call-report */
	bool inbound;                   /* call.type is inboundPhoneCall */
};

/* Parses body[0..len) into *m. Returns 0; or -1 when the body is not JSON or has no
 * message.type, with the reason (and JSON error position) in err. On failure *m holds
 * nothing to free. On success release with vapi_msg_free(). */
int vapi_msg_parse(const char *body, size_t len, struct vapi_msg *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Releases what vapi_msg_parse() allocated (NULL-safe). */
void vapi_msg_free(struct vapi_msg *m);

/* The key under which repeated deliveries of one message collapse, written into buf:
 * the status for status-update, "" for end-of-call-report, else the timestamp in ms, else
 * fallback (the stream entry id). Returns buf. */
const char *vapi_msg_dedupe_key(const struct vapi_msg *m, const char *fallback, char *buf,
                                size_t size);

#endif

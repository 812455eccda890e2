#ifndef SB_ROUTE_H
#define SB_ROUTE_H

#include "vapi_msg.h"

#include <stdbool.h>
#include <stddef.h>

/* What the database knows about a message's identifiers, looked up before routing. */
struct route_facts {
	const char *phone_org;     /* organization of phone_number_id, NULL if unknown */
	bool meta_org_exists;      /* meta_org_id names an existing organization */
	const char *assistant_org; /* organization of assistant_id, NULL if unknown */
};

enum route_rule {
	ROUTE_NONE,      /* unrouted: park it */
	ROUTE_PHONE,     /* inbound call, by the called phone number */
	ROUTE_METADATA,  /* organizationId in the call's metadata */
	ROUTE_ASSISTANT, /* fallback: the assistant's organization */
};

struct route_result {
	const char *org_id;   /* borrowed from the message or the facts; NULL when unrouted */
	enum route_rule rule; /* which rule decided */
	char reason[256];     /* why it is unrouted, or which rule routed it */
};

/* Decides the organization that owns m (rules in README "Routing"): inbound calls by phone
 * number (metadata is never trusted on inbound calls), others by metadata; the assistant as
 * fallback; else unrouted with the reason. Pure: never fails. */
void route_resolve(const struct vapi_msg *m, const struct route_facts *f, struct route_result *r);

/* Short name of a rule, for logs and metrics. */
const char *route_rule_name(enum route_rule rule);

#endif

/* The routing rules: which organization owns a message. */
#include "route.h"

#include <stdio.h>

const char *route_rule_name(enum route_rule rule)
{
	static const char *const names[] = {"unrouted", "phone_number", "metadata", "assistant"};

	return names[rule];
}

static void routed(struct route_result *r, const char *org, enum route_rule rule)
{
	r->org_id = org;
	r->rule = rule;
	snprintf(r->reason, sizeof(r->reason), "routed by %s", route_rule_name(rule));
}

void route_resolve(const struct vapi_msg *m, const struct route_facts *f, struct route_result *r)
{
	r->org_id = NULL;
	r->rule = ROUTE_NONE;
	if (m->inbound && f->phone_org != NULL) {
		routed(r, f->phone_org, ROUTE_PHONE);
		return;
	}
	if (!m->inbound && m->meta_org_id != NULL) {
		if (f->meta_org_exists) {
			routed(r, m->meta_org_id, ROUTE_METADATA);
			return;
		}
		/* An organization named explicitly but unknown is parked rather than filed
		 * under the assistant's: the SaaS said whose call this is. */
		snprintf(r->reason, sizeof(r->reason),
		         "organization \"%.100s\" named in %s does not exist", m->meta_org_id,
		         m->meta_org_from);
		return;
	}
	if (f->assistant_org != NULL) {
		routed(r, f->assistant_org, ROUTE_ASSISTANT);
		return;
	}
	if (m->inbound && m->phone_number_id != NULL)
		snprintf(r->reason, sizeof(r->reason),
		         "inbound call to unknown phone number \"%.80s\" and no known assistant",
		         m->phone_number_id);
	else if (m->assistant_id != NULL)
		snprintf(r->reason, sizeof(r->reason),
		         "no organizationId in metadata and unknown assistant \"%.80s\"",
		         m->assistant_id);
	else
		snprintf(r->reason, sizeof(r->reason),
		         "no phone number, organizationId or assistant to route by");
}

#ifndef VCTL_ROUTING_H
#define VCTL_ROUTING_H

#include <jansson.h>

/* routing import's plan: which assistants and phone_numbers rows Vapi implies, compared
 * with what the tables hold. Plain data in, plain data out: no I/O.
 *
 * An assistant belongs to the organization in its metadata.organizationId; a phone number to
 * the organization of the assistant it is assigned to (by that assistant's metadata, else
 * by the assistants table). Rows are only ever added: one that exists with another
 * organization, or an organization that is not in `organizations`, is a conflict and is left
 * for a person to decide. */

/* What Vapi says and what the tables hold (all borrowed). Objects used as maps. */
struct routing_input {
	const json_t *vapi_assistants; /* {assistant id: {"org": s|null, "name": s|null}} */
	const json_t *vapi_phones;     /* {phone id: {"assistantId": s|null, "number": s|null}} */
	const json_t *orgs;            /* {organization id: true} */
	const json_t *db_assistants;   /* {provider_assistant_id: organization_id} */
	const json_t *db_phones;       /* {provider_phone_id: organization_id} */
};

/* Actions of a planned row. */
#define ROUTING_ADD "add"           /* insert it */
#define ROUTING_PRESENT "present"   /* the table already says the same */
#define ROUTING_CONFLICT "conflict" /* the table or organizations disagree: left alone */
#define ROUTING_NO_ORG "no-org"     /* Vapi names no organization for it */

/* Returns the plan, a new array of {"kind": "assistant"|"phone-number", "id", "org",
 * "label" (name or number), "action" (ROUTING_*), "why"} objects, assistants first, each
 * group in id order; NULL when out of memory. */
json_t *routing_plan_new(const struct routing_input *in);

#endif

/* What the commands share: the desired configuration and error output. */
#include "vctl.h"

#include "sync.h"

#include <stdarg.h>
#include <stdio.h>

const char *vctl_url(const struct vctl *v)
{
	return v->opts->url != NULL ? v->opts->url : v->cfg->webhook_url;
}

int vctl_desired(const struct vctl *v, struct sync_desired *d)
{
	const char *url = vctl_url(v);
	char err[400];

	if (sync_desired_init(d, url != NULL ? url : "", v->cfg->secret_header,
	                      v->cfg->secret != NULL ? v->cfg->secret : "",
	                      v->opts->timeout_seconds, v->opts->messages, err, sizeof(err)) != 0) {
		vctl_err("%s", err);
		return VCTL_EXIT_USAGE;
	}
	if (url == NULL) {
		vctl_err("no webhook URL: give --url URL or set VAPI_WEBHOOK_URL");
		return VCTL_EXIT_USAGE;
	}
	if (v->cfg->secret == NULL) {
		vctl_err("WEBHOOK_SECRET: required (or WEBHOOK_SECRET_FILE)");
		return VCTL_EXIT_USAGE;
	}
	return VCTL_EXIT_OK;
}

void vctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("vapictl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

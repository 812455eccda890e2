/* JSON log lines on stderr. */
#include <stddef.h>

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_component = "switchboard";
static enum log_level log_min = LOGL_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *component, enum log_level min)
{
	log_component = component;
	log_min = min;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOGL_DEBUG; i <= LOGL_ERROR; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

size_t log_json_escape(char *out, size_t size, const char *s)
{
	size_t n = 0;

	if (size == 0)
		return 0;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t elen;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			elen = 2;
		} else if (c < 0x20) {
			elen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else {
			esc[0] = (char)c;
			elen = 1;
		}
		if (n + elen >= size)
			break;
		memcpy(out + n, esc, elen);
		n += elen;
	}
	out[n] = '\0';
	return n;
}

void log_msg(enum log_level lvl, const char *id_key, const char *id, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX / 2], esc[LOG_LINE_MAX / 2 + 64], idesc[160], line[LOG_LINE_MAX];
	char ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_json_escape(esc, sizeof(esc), msg);

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03dZ", (int)(tv.tv_usec / 1000));

	if (id_key != NULL && id != NULL) {
		log_json_escape(idesc, sizeof(idesc), id);
		n = snprintf(line, sizeof(line),
		             "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"%s\":\"%s\","
		             "\"msg\":\"%s\"}\n",
		             ts, level_names[lvl], log_component, id_key, idesc, esc);
	} else {
		n = snprintf(
		    line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n", ts,
		    level_names[lvl], log_component, esc);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 3] = '"';
		line[n - 2] = '}';
		line[n - 1] = '\n';
	}
	/* One write per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

#ifndef SB_LOG_H
#define SB_LOG_H

/* Structured logging: one JSON object per line on stderr,
 * {"ts":"...","level":"info","component":"worker","id":"...","msg":"..."}. */

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

/* Sets the component name (borrowed: must outlive the process's logging) and the lowest
 * level written. */
void log_init(const char *component, enum log_level min);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out) __attribute__((warn_unused_result));

/* Writes one line. id_key/id name the request or stream entry the line is about (both may
 * be NULL). The formatted message is JSON-escaped. Thread-safe: one write(2) per line. */
void log_msg(enum log_level lvl, const char *id_key, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_msg(LOGL_DEBUG, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, NULL, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, NULL, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOGL_ERROR, NULL, NULL, __VA_ARGS__)

/* Escapes s for a JSON string into out (always NUL-terminated, truncated to fit). Returns
 * the length written. */
size_t log_json_escape(char *out, size_t size, const char *s);

#endif

#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <stddef.h>

/* Helpers shared by the unit tests. */

/* Reads a whole file into a new buffer (free with free()), NULL when unreadable. The
 * buffer holds exactly *len bytes with no NUL after them: a parser must honour len, and
 * AddressSanitizer reports any read past the end. */
char *test_slurp(const char *path, size_t *len);

#endif

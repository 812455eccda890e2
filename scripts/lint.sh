#!/bin/sh
# Checks the C sources: formatting against the committed .clang-format, and calls to functions
# that are banned because they cannot bound their output or their input errors (sprintf,
# strcpy, strcat, gets), keep hidden state (strtok) or hide conversion errors (atoi).
# Prints every offending file:line, then a one-line summary; exits 1 when anything is wrong.
set -u
cd "$(dirname "$0")/.." || exit 2

DIRS='common ingest worker tests deploy bench'

# Tracked files only, so scratch files in the work tree are not judged; outside a git
# checkout (an unpacked archive) every file under the folders counts.
list=$(mktemp) || exit 2
out=$(mktemp) || exit 2
raw=$(mktemp) || exit 2
trap 'rm -f "$list" "$list.present" "$out" "$raw"' EXIT
trap 'exit 130' INT TERM
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# shellcheck disable=SC2086 # $DIRS is a list of folder names
	for d in $DIRS; do
		git ls-files -- "$d/*.c" "$d/*.h"
	done >"$list"
else
	# shellcheck disable=SC2086
	find $DIRS -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort >"$list"
fi
# A tracked file deleted in the work tree is not there to check.
nfiles=0
while IFS= read -r f; do
	[ -f "$f" ] && nfiles=$((nfiles + 1)) && printf '%s\n' "$f"
done <"$list" >"$list.present"
mv "$list.present" "$list"

if ! command -v clang-format >/dev/null 2>&1; then
	echo "lint: clang-format not found (sh scripts/deps.sh installs it)" >&2
	exit 2
fi

format_bad=0
if [ "$nfiles" -gt 0 ]; then
	tr '\n' '\0' <"$list" | xargs -0 clang-format --dry-run --Werror >"$raw" 2>&1
	rc=$?
	# One file:line per line to reformat (clang-format reports file:line:col: error: ...,
	# in file order, once per column).
	sed -n 's/^\(.*\):\([0-9][0-9]*\):[0-9][0-9]*: error: .*$/\1:\2: not clang-formatted/p' \
		"$raw" | uniq >"$out"
	format_bad=$(wc -l <"$out")
	cat "$out"
	# A file clang-format cannot read, or a bad .clang-format, gives no file:line: show why.
	if [ "$rc" -ne 0 ] && [ "$format_bad" -eq 0 ]; then
		head -20 "$raw"
		format_bad=1
	fi
fi

banned_bad=0
if [ "$nfiles" -gt 0 ]; then
	# Whole words only: snprintf, strncpy, fgets, strtok_r and the like are not matched.
	tr '\n' '\0' <"$list" | xargs -0 grep -nHE \
		'(^|[^[:alnum:]_])(sprintf|strcpy|strcat|strtok|atoi|gets)[[:space:]]*\(' |
		sed 's/^\([^:]*:[0-9]*\):[[:space:]]*\(.*\)$/\1: banned function: \2/' >"$out"
	banned_bad=$(wc -l <"$out")
	cat "$out"
fi

if [ "$format_bad" -eq 0 ] && [ "$banned_bad" -eq 0 ]; then
	echo "lint: OK, $nfiles files clean"
	exit 0
fi
echo "lint: FAILED, $nfiles files checked: $format_bad line(s) not clang-formatted," \
	"$banned_bad banned call(s) (clang-format -i FILE reformats)"
exit 1

#!/bin/sh
# Runs the unit test binaries named as arguments ($BIN/tests/NAME, cmocka) and then the
# integration tests (pytest, tests/integration), from the repository root.
# Counts test cases, not programs: the last line is always "N passed, M failed", and the exit
# status is 1 when anything failed. A program that is missing, crashes, is killed by a
# sanitizer or times out counts as one more failure, so nothing is lost silently.
set -u
cd "$(dirname "$0")/.." || exit 2

BIN=${BIN:-bin}
# Absolute, so that tests which change directory still find the binaries.
case $BIN in
/*) ;;
*) BIN=$PWD/$BIN ;;
esac
export BIN
PYTHON=${PYTHON:-/usr/bin/python3}
# Upper bounds so that a hung test ends the run instead of blocking it (seconds).
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
INTEGRATION_TIMEOUT=${INTEGRATION_TIMEOUT:-1800}

if [ -n "${SANITIZER:-}" ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
fi
# cmocka's plain text output is what gets counted, whatever the caller's environment asks.
export CMOCKA_MESSAGE_OUTPUT=STDOUT
unset CMOCKA_XML_FILE

passed=0
failed=0
out=$(mktemp) || exit 2
rcfile=$(mktemp) || exit 2
trap 'rm -f "$out" "$rcfile"' EXIT
trap 'exit 130' INT TERM

# Runs a command with a time limit when timeout(1) exists; output goes to the terminal and
# to $out, the exit status to $rcfile.
run_logged() {
	limit=$1
	shift
	if command -v timeout >/dev/null 2>&1; then
		set -- timeout -k 10 "$limit" "$@"
	fi
	{
		"$@" 2>&1
		echo $? >"$rcfile"
	} | tee "$out"
	rc=$(cat "$rcfile")
	if [ "$rc" -eq 124 ] && command -v timeout >/dev/null 2>&1; then
		echo "run: timed out after ${limit}s"
	fi
}

# The number in the last "[  PASSED  ] N test(s)." or "[  FAILED  ] N test(s)" line.
cmocka_count() {
	sed -n "s/^\\[  $1  \\] \\([0-9][0-9]*\\) test.*/\\1/p" "$out" | tail -n 1
}

for name in "$@"; do
	exe=$BIN/tests/$name
	echo "== $name"
	if [ ! -x "$exe" ]; then
		echo "run: $exe is missing (not built)"
		failed=$((failed + 1))
		continue
	fi
	run_logged "$UNIT_TIMEOUT" "$exe"
	p=$(cmocka_count PASSED)
	f=$(cmocka_count FAILED)
	if [ -z "$p" ] && [ -z "$f" ]; then
		# No summary: the program died part way; the cases it finished still count.
		p=$(grep -c '^\[       OK \]' "$out")
		f=1
		echo "run: $name ended without a summary (exit status $rc)"
	else
		p=${p:-0}
		f=${f:-0}
		# A leak or sanitizer report after the summary fails the program, not a case.
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			echo "run: $name exited with status $rc after all its cases passed"
		fi
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done

echo "== integration"
if [ ! -d tests/integration ]; then
	echo "run: tests/integration does not exist"
	failed=$((failed + 1))
elif [ ! -x "$PYTHON" ]; then
	echo "run: $PYTHON not found (sh scripts/deps.sh installs python3 and pytest)"
	failed=$((failed + 1))
else
	run_logged "$INTEGRATION_TIMEOUT" "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/integration
	# The final summary, e.g. "2 failed, 10 passed, 1 error in 3.21s": errors count as failed.
	summary=$(grep -E '^[= ]*([0-9]+ [a-z]+|no tests ran)' "$out" | grep -E ' in [0-9.]+s' |
		tail -n 1)
	counts=$(printf '%s\n' "$summary" | awk '{
		sub(/ in [0-9.]+s.*$/, ""); gsub(/=/, "")
		n = split($0, part, ",")
		for (i = 1; i <= n; i++) {
			split(part[i], w, " ")
			if (w[2] == "passed") p += w[1]
			else if (w[2] == "failed" || w[2] == "error" || w[2] == "errors") f += w[1]
			else if (w[2] == "skipped") s += w[1]
		}
	} END { print p + 0, f + 0, s + 0 }')
	p=${counts%% *}
	f=${counts#* }
	f=${f% *}
	skipped=${counts##* }
	p=${p:-0}
	case $rc in
	0) ;;
	5)
		echo "run: pytest collected no tests in tests/integration"
		f=$((f + 1))
		;;
	*)
		# Interrupted, internal error, usage error, timeout: the run itself failed.
		if [ "$f" -eq 0 ]; then
			echo "run: pytest exited with status $rc"
			f=1
		fi
		;;
	esac
	passed=$((passed + p))
	failed=$((failed + f))
fi

if [ "${skipped:-0}" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped (reasons above)"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]

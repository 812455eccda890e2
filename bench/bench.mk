# `make bench`: the benchmark table (bench/run.py). Variables, from the environment or the
# command line: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_QUICK=1 (3 s, one run),
# BENCH_E2E (20000 messages), BENCH_KEEP=1 (keep the temporary folder and its logs).
# See BENCHMARKS.md.

BENCH_PYTHON ?= /usr/bin/python3
BENCH_PKGS := libpq jansson

.PHONY: bench
bench: all build/bench/pgfloor
	@$(BENCH_PYTHON) bench/run.py

build/bench/pgfloor: bench/pgfloor.c worker/calls_sql.h
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  CC      $@"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Iworker \
		$(shell pkg-config --cflags $(BENCH_PKGS) 2>/dev/null) -o $@ $< \
		$(shell pkg-config --libs $(BENCH_PKGS) 2>/dev/null)

# `make bench`: the benchmark table (bench/run.py). Variables, from the environment or the
# command line: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_QUICK=1 (3 s, one run),
# BENCH_E2E (20000 messages), BENCH_KEEP=1 (keep the temporary folder and its logs),
# BENCH_ONLY (a subset of nginx,redis,ingest,callgrind,redrive,memory,postgres,e2e,cluster,soak;
# soak only when named). See BENCHMARKS.md.

BENCH_PYTHON ?= /usr/bin/python3
BENCH_PKGS := libpq jansson

.PHONY: bench
bench: all build/bench/pgfloor
	@$(BENCH_PYTHON) bench/run.py

# The floor builds its rows and its upsert with the worker's own code (calls_row.c), so that
# it writes rows exactly as the worker does.
PGFLOOR_OBJ := build/worker/calls_row.o build/worker/vapi_msg.o build/worker/jscan.o \
	build/common/util.o build/common/timefmt.o

build/bench/pgfloor: bench/pgfloor.c $(PGFLOOR_OBJ)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  CC      $@"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Iworker -Icommon \
		$(shell pkg-config --cflags $(BENCH_PKGS) 2>/dev/null) -o $@ $< $(PGFLOOR_OBJ) \
		$(shell pkg-config --libs $(BENCH_PKGS) 2>/dev/null) -lm

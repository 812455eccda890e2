# Switchboard build. Plain GNU make: `make`, `make test`, `make run`, `make sanitize`,
# `make lint`, `make compose-test` (docker-compose.yml in containers, podman; not part of
# `make test`). `V=1` shows the full command lines; `SANITIZER=address,undefined` builds
# everything with those sanitizers (into build/san and bin/san, so plain and sanitized
# objects never mix).

CC ?= cc
WERROR ?= 1
PKGS := hiredis jansson libpq libcrypto libzstd
SANITIZER ?=

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif

ifneq ($(SANITIZER),)
BUILD := build/san
BIN := bin/san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZER) -fno-sanitize-recover=all
else
BUILD := build
BIN := bin
OPT := -O2 -g
endif

# llhttp (the HTTP/1.x parser of Node.js) is compiled from the C sources Debian's node-llhttp
# ships; strict mode refuses a bare CR where LF must follow (CVE-2023-30589).
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INCLUDE ?= /usr/share/include/llhttp
LLHTTP_SRC := $(LLHTTP_DIR)/llhttp.c $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c
LLHTTP_OBJ := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
LLHTTP_CFLAGS := -DLLHTTP_STRICT_MODE=1 -isystem $(LLHTTP_INCLUDE)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Icommon -Iworker -Iingest -I$(BUILD) \
	$(LLHTTP_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
LDFLAGS_ALL = $(OPT) $(LDFLAGS)
LIBS_ALL = $(PKG_LIBS) -lpthread $(LIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

COMMON_SRC := common/cfg.c common/log.c common/redisconn.c common/stream.c common/util.c \
	common/metrics.c common/admin.c
COMMON_SRC += common/timefmt.c common/progress.c common/rslots.c common/shards.c
INGEST_SRC := ingest/main.c ingest/server.c ingest/webhook.c ingest/httpframe.c ingest/xpipe.c \
	ingest/auth.c ingest/enqueue.c ingest/spool.c
WORKER_LIB_SRC := worker/vapi_msg.c worker/jscan.c worker/route.c worker/calls_row.c worker/sink.c worker/consumer.c \
	worker/maint.c worker/wmetrics.c worker/ops.c worker/dlq.c worker/orgcache.c \
	worker/migrate.c worker/status.c worker/status_http.c
WORKER_LIB_SRC += worker/pgfail.c worker/opscli.c worker/dlqsel.c worker/dlqfix.c
WORKER_SRC := worker/main.c $(WORKER_LIB_SRC)
UNIT_TESTS := test_vapi_msg test_route test_cfg test_auth test_orgcache test_httpframe test_jscan \
	test_admin test_calls_row test_rslots
UNIT_TESTS += test_opsfmt

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
INGEST_OBJ := $(INGEST_SRC:%.c=$(BUILD)/%.o)
WORKER_LIB_OBJ := $(WORKER_LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/migrations.o \
	$(BUILD)/status_page.o
WORKER_OBJ := $(BUILD)/worker/main.o $(WORKER_LIB_OBJ)
MIGRATIONS := $(sort $(wildcard deploy/sql/*.sql))

.PHONY: all deps test unit integration sanitize lint run clean fuzz bench compose-test cluster-test
all: $(BIN)/switchboard-ingest $(BIN)/switchboard-worker

include deploy/vapictl/vapictl.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk
all: $(EXTRA_BINS)

$(BIN)/switchboard-ingest: $(INGEST_OBJ) $(LLHTTP_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcivetweb $(LIBS_ALL)

$(BIN)/switchboard-worker: $(WORKER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcivetweb $(LIBS_ALL)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

# Generated code, not ours: built without our warning flags.
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) -std=c11 $(OPT) $(LLHTTP_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# The SQL migrations are compiled into the worker, so a binary always carries the schema
# it was built for (no path to get wrong in a container or a systemd unit).
$(BUILD)/migrations.c: $(MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  GEN     $@"
	$(Q)sh scripts/embed-sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

# A migration is data and may exceed the 4095 characters C99 promises for one literal;
# GCC and Clang take any length.
$(BUILD)/migrations.o: $(BUILD)/migrations.c
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -Wno-overlength-strings -c -o $@ $<

# The status page is compiled into the worker too.
$(BUILD)/status_page.c: worker/status_page.html scripts/embed-text.sh
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  GEN     $@"
	$(Q)sh scripts/embed-text.sh status_page_html worker/status_page.html > $@.tmp && mv $@.tmp $@

$(BUILD)/status_page.o: $(BUILD)/status_page.c
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -Wno-overlength-strings -c -o $@ $<

# Unit tests (cmocka), one binary each, linked with the modules they test.
$(BIN)/tests/test_vapi_msg: $(BUILD)/tests/unit/test_vapi_msg.o $(BUILD)/tests/unit/testutil.o \
	$(WORKER_LIB_OBJ) $(COMMON_OBJ)
$(BIN)/tests/test_route: $(BUILD)/tests/unit/test_route.o $(BUILD)/tests/unit/testutil.o \
	$(WORKER_LIB_OBJ) $(COMMON_OBJ)
$(BIN)/tests/test_cfg: $(BUILD)/tests/unit/test_cfg.o $(COMMON_OBJ)
$(BIN)/tests/test_orgcache: $(BUILD)/tests/unit/test_orgcache.o $(BUILD)/worker/orgcache.o
$(BIN)/tests/test_httpframe: $(BUILD)/tests/unit/test_httpframe.o $(BUILD)/ingest/httpframe.o \
	$(LLHTTP_OBJ)
$(BIN)/tests/test_jscan: $(BUILD)/tests/unit/test_jscan.o $(BUILD)/tests/unit/testutil.o \
	$(WORKER_LIB_OBJ) $(COMMON_OBJ)
$(BIN)/tests/test_calls_row: $(BUILD)/tests/unit/test_calls_row.o $(BUILD)/worker/calls_row.o \
	$(BUILD)/worker/vapi_msg.o $(BUILD)/worker/jscan.o $(BUILD)/common/util.o
$(BIN)/tests/test_auth: $(BUILD)/tests/unit/test_auth.o $(BUILD)/ingest/auth.o $(COMMON_OBJ)
$(BIN)/tests/test_admin: $(BUILD)/tests/unit/test_admin.o $(BUILD)/common/admin.o \
	$(BUILD)/common/util.o
$(BIN)/tests/test_rslots: $(BUILD)/tests/unit/test_rslots.o $(BUILD)/tests/unit/testutil.o \
	$(BUILD)/common/rslots.o
$(BIN)/tests/test_opsfmt: $(BUILD)/tests/unit/test_opsfmt.o $(BUILD)/worker/pgfail.o \
	$(BUILD)/common/timefmt.o
$(BIN)/tests/%:
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcivetweb $(LIBS_ALL) -lcmocka

# Installs the system packages the build and the tests need when any is missing.
deps:
	@sh scripts/deps.sh

UNIT_TESTS += $(EXTRA_UNIT_TESTS)
unit: all $(UNIT_TESTS:%=$(BIN)/tests/%)

test: deps
	@$(MAKE) --no-print-directory unit
	@BIN=$(BIN) SANITIZER=$(SANITIZER) sh tests/run.sh $(UNIT_TESTS)

sanitize:
	@$(MAKE) --no-print-directory SANITIZER=address,undefined test

# Redis Cluster end to end (tests/integration/test_cluster.py): six nodes, 10,000 webhooks, a
# master killed. Its own CI phase, not part of `make test`.
cluster-test: deps all
	@SWITCHBOARD_CLUSTER_TESTS=1 BIN=$(BIN) /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		tests/integration/test_cluster.py

lint:
	@sh scripts/lint.sh

# The compose stack built and run in containers (podman + docker-compose), as README's
# "docker compose" section does it; needs root. See tests/deploy/compose_up.sh.
compose-test:
	@bash tests/deploy/compose_up.sh

run: deps all
	@bash scripts/run-local.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# Switchboard build. Plain GNU make: `make`, `make test`, `make run`, `make sanitize`,
# `make lint`. `V=1` shows the full command lines; `SANITIZER=address,undefined` builds
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

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Icommon -Iworker -Iingest -I$(BUILD) \
	$(PKG_CFLAGS) $(CFLAGS) -MMD -MP
LDFLAGS_ALL = $(OPT) $(LDFLAGS)
LIBS_ALL = $(PKG_LIBS) -lpthread $(LIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

COMMON_SRC := common/cfg.c common/log.c common/redisconn.c common/stream.c common/util.c \
	common/metrics.c
COMMON_SRC += common/timefmt.c common/progress.c
INGEST_SRC := ingest/main.c ingest/server.c ingest/webhook.c ingest/httpreq.c ingest/xpipe.c \
	ingest/auth.c ingest/enqueue.c ingest/spool.c
WORKER_LIB_SRC := worker/vapi_msg.c worker/jscan.c worker/route.c worker/sink.c worker/consumer.c \
	worker/maint.c worker/wmetrics.c worker/ops.c worker/dlq.c worker/orgcache.c \
	worker/migrate.c
WORKER_LIB_SRC += worker/pgfail.c worker/opscli.c worker/dlqsel.c worker/dlqfix.c
WORKER_SRC := worker/main.c $(WORKER_LIB_SRC)
UNIT_TESTS := test_vapi_msg test_route test_cfg test_auth test_orgcache test_httpreq test_jscan
UNIT_TESTS += test_opsfmt

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
INGEST_OBJ := $(INGEST_SRC:%.c=$(BUILD)/%.o)
WORKER_LIB_OBJ := $(WORKER_LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/migrations.o
WORKER_OBJ := $(BUILD)/worker/main.o $(WORKER_LIB_OBJ)
MIGRATIONS := $(sort $(wildcard deploy/sql/*.sql))

.PHONY: all deps test unit integration sanitize lint run clean fuzz bench
all: $(BIN)/switchboard-ingest $(BIN)/switchboard-worker

include deploy/vapictl/vapictl.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk
all: $(EXTRA_BINS)

$(BIN)/switchboard-ingest: $(INGEST_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

$(BIN)/switchboard-worker: $(WORKER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcivetweb $(LIBS_ALL)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

# The SQL migrations are compiled into the worker, so a binary always carries the schema
# it was built for (no path to get wrong in a container or a systemd unit).
$(BUILD)/migrations.c: $(MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  GEN     $@"
	$(Q)sh scripts/embed-sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/migrations.o: $(BUILD)/migrations.c
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

# Unit tests (cmocka), one binary each, linked with the modules they test.
$(BIN)/tests/test_vapi_msg: $(BUILD)/tests/unit/test_vapi_msg.o $(BUILD)/tests/unit/testutil.o \
	$(WORKER_LIB_OBJ) $(COMMON_OBJ)
$(BIN)/tests/test_route: $(BUILD)/tests/unit/test_route.o $(BUILD)/tests/unit/testutil.o \
	$(WORKER_LIB_OBJ) $(COMMON_OBJ)
$(BIN)/tests/test_cfg: $(BUILD)/tests/unit/test_cfg.o $(COMMON_OBJ)
$(BIN)/tests/test_orgcache: $(BUILD)/tests/unit/test_orgcache.o $(BUILD)/worker/orgcache.o
$(BIN)/tests/test_httpreq: $(BUILD)/tests/unit/test_httpreq.o $(BUILD)/ingest/httpreq.o \
	$(BUILD)/common/util.o
$(BIN)/tests/test_jscan: $(BUILD)/tests/unit/test_jscan.o $(BUILD)/tests/unit/testutil.o \
	$(WORKER_LIB_OBJ) $(COMMON_OBJ)
$(BIN)/tests/test_auth: $(BUILD)/tests/unit/test_auth.o $(BUILD)/ingest/auth.o $(COMMON_OBJ)
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

lint:
	@sh scripts/lint.sh

run: deps all
	@bash scripts/run-local.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

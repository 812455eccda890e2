# vapictl, the Vapi provisioning CLI (libcurl + jansson), and its unit test. Included by the
# top Makefile, whose variables (BUILD, BIN, CC, CFLAGS_ALL, ...) it uses.

VAPICTL_SRC := deploy/vapictl/main.c deploy/vapictl/vctl.c deploy/vapictl/vctl_cfg.c \
	deploy/vapictl/vapi_api.c deploy/vapictl/vapi_pager.c deploy/vapictl/sync.c \
	deploy/vapictl/backfill.c deploy/vapictl/cmd_sync.c deploy/vapictl/cmd_create.c \
	deploy/vapictl/cmd_org.c deploy/vapictl/cmd_backfill.c
VAPICTL_SRC += deploy/vapictl/routing.c deploy/vapictl/cmd_routing.c deploy/vapictl/watch.c
VAPICTL_OBJ = $(VAPICTL_SRC:%.c=$(BUILD)/%.o)
# Only the shared modules vapictl uses; cfg.o, for the Redis settings it shares with the
# binaries.
VAPICTL_COMMON_OBJ = $(BUILD)/common/util.o $(BUILD)/common/redisconn.o $(BUILD)/common/rslots.o $(BUILD)/common/stream.o \
	$(BUILD)/common/timefmt.o $(BUILD)/common/progress.o $(BUILD)/common/cfg.o \
	$(BUILD)/common/log.o $(BUILD)/common/shards.o
VAPICTL_CFLAGS = -Ideploy/vapictl $(shell pkg-config --cflags libcurl 2>/dev/null)
VAPICTL_LIBS = $(shell pkg-config --libs libcurl 2>/dev/null)

# The rules below must not become the default goal wherever this file is included.
VAPICTL_GOAL := $(.DEFAULT_GOAL)

EXTRA_BINS += $(BIN)/vapictl
EXTRA_UNIT_TESTS += test_vapictl_sync test_vapictl_routing

$(VAPICTL_OBJ) $(BUILD)/tests/unit/test_vapictl_sync.o $(BUILD)/tests/unit/test_vapictl_routing.o: \
	CFLAGS_ALL += $(VAPICTL_CFLAGS)

$(BIN)/vapictl: $(VAPICTL_OBJ) $(VAPICTL_COMMON_OBJ)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(VAPICTL_LIBS) $(LIBS_ALL)

# The recipe is the top Makefile's $(BIN)/tests/% rule.
$(BIN)/tests/test_vapictl_sync: $(BUILD)/tests/unit/test_vapictl_sync.o \
	$(BUILD)/deploy/vapictl/sync.o
$(BIN)/tests/test_vapictl_routing: $(BUILD)/tests/unit/test_vapictl_routing.o \
	$(BUILD)/deploy/vapictl/routing.o

.DEFAULT_GOAL := $(VAPICTL_GOAL)

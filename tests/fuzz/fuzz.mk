# libFuzzer targets, included by the Makefile (which defines WARN):
#   make fuzz           builds the targets and runs each for FUZZ_SECONDS
#   make fuzz-build     builds them only
# Each run starts from the corpus in build/fuzz/corpus/NAME, seeded from the Vapi samples
# and tests/fixtures; a crashing input is written to build/fuzz/NAME-crash-<sha1>, and
# `build/fuzz/fuzz_NAME FILE` replays it.

# Guarded, so that naming it with -f as well as including it does no harm.
ifndef FUZZ_MK
FUZZ_MK := 1

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_OUT := build/fuzz
VAPI_SAMPLES_DIR ?= tests/fixtures/vapi
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) \
	-Icommon -Iworker -Iingest
FUZZ_NAMES := auth vapi_msg httpframe

.PHONY: fuzz fuzz-build

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_OUT)/fuzz_%)

$(FUZZ_OUT)/fuzz_auth: tests/fuzz/fuzz_auth.c ingest/auth.c common/util.c ingest/auth.h \
		common/util.h
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags libcrypto) -o $@ \
		$(filter %.c,$^) $(shell pkg-config --libs libcrypto)

$(FUZZ_OUT)/fuzz_vapi_msg: tests/fuzz/fuzz_vapi_msg.c worker/vapi_msg.c worker/jscan.c \
		common/util.c worker/vapi_msg.h worker/jscan.h common/util.h
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags jansson) -o $@ \
		$(filter %.c,$^) $(shell pkg-config --libs jansson) -lm

# llhttp's generated code is compiled without our warning flags (it is not ours).
$(FUZZ_OUT)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(filter-out $(WARN) -fsanitize=fuzzer%,$(FUZZ_CFLAGS)) \
		-fsanitize=fuzzer-no-link,address,undefined $(LLHTTP_CFLAGS) -c -o $@ $<

$(FUZZ_OUT)/fuzz_httpframe: tests/fuzz/fuzz_httpframe.c ingest/httpframe.c ingest/httpframe.h \
		$(LLHTTP_SRC:$(LLHTTP_DIR)/%.c=$(FUZZ_OUT)/llhttp/%.o)
	@mkdir -p $(@D)
	@[ "$(V)" = 1 ] || echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(LLHTTP_CFLAGS) -o $@ $(filter %.c %.o,$^)

# Runs every target even when one finds a crash, and fails if any did.
fuzz: fuzz-build
	$(Q)sh tests/fuzz/seed.sh $(FUZZ_OUT) $(VAPI_SAMPLES_DIR) tests/fixtures
	$(Q)rc=0; for name in $(FUZZ_NAMES); do \
		echo "== fuzz_$$name, $(FUZZ_SECONDS) s"; \
		$(FUZZ_OUT)/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_OUT)/$$name- -dict=tests/fuzz/$$name.dict \
			$(FUZZ_OUT)/corpus/$$name || rc=1; \
	done; exit $$rc

endif

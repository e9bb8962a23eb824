# h2gw build. `make` builds build/h2gw; `make test` is what CI runs.

CC      ?= cc
WIP_SRC :=
LLHTTP_SRC_DIR ?= /usr/share/llhttp
LLHTTP_INC_DIR ?= /usr/share/include/llhttp

PKGS     := libuv libnghttp2 libssl libcrypto inih
# pkg-config is only asked when a build needs it, so `make deps` works on a bare machine.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT      ?= -O2 -g
INCLUDES := -I. -I$(LLHTTP_INC_DIR)
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(INCLUDES) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
# llhttp's generated C builds with -Wall but not -Wextra (unused parameters).
# Strict mode: a bare CR is not a line end and chunk data must end in CRLF
# (both are request-smuggling vectors in loose mode).
CFLAGS_LLHTTP = $(CSTD) -DLLHTTP_STRICT_MODE=1 -Wall -Wno-unused-parameter $(OPT) -I$(LLHTTP_INC_DIR) $(EXTRA_CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread $(EXTRA_LDFLAGS)

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

GATEWAY_SRC := $(filter-out $(WIP_SRC),$(wildcard gateway/*.c gateway/*/*.c))
PROTO_SRC   := $(wildcard proto/*.c)
CONFIG_SRC  := $(wildcard config/*.c)
LLHTTP_SRC  := llhttp.c api.c http.c
ORIGIN_SRC  := $(wildcard test/origin/*.c)
UNIT_SRC    := $(wildcard test/unit/test_*.c)

# $(1) = output dir (build or build/asan)
objs = $(patsubst %.c,$(1)/obj/%.o,$(GATEWAY_SRC) $(PROTO_SRC) $(CONFIG_SRC)) \
       $(patsubst %.c,$(1)/obj/llhttp/%.o,$(LLHTTP_SRC))
LIB_OBJS = $(patsubst %.c,build/obj/%.o,$(PROTO_SRC) $(CONFIG_SRC) gateway/core/err.c \
                                     gateway/client/h2_glitch.c) \
           $(patsubst %.c,build/obj/llhttp/%.o,$(LLHTTP_SRC))

.SECONDARY:
.PHONY: all deps test unit integration integration-asan asan run bench clean format check-format
all: build/h2gw build/origin

deps:
	@bash scripts/deps.sh

build/h2gw: $(call objs,build)
	$(CC) $(OPT) -o $@ $^ $(LDLIBS_ALL)

build/asan/h2gw: $(call objs,build/asan)
	$(CC) $(OPT) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_ALL)

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

build/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -MMD -MP -c -o $@ $<

build/obj/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LLHTTP) -c -o $@ $<

build/asan/obj/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LLHTTP) $(SAN_FLAGS) -c -o $@ $<

build/origin: $(patsubst %.c,build/obj/%.o,$(ORIGIN_SRC)) $(patsubst %.c,build/obj/llhttp/%.o,$(LLHTTP_SRC))
	$(CC) $(OPT) -o $@ $^ $(LDLIBS_ALL) -lcrypto

# Unit tests: one binary per test/unit/test_<module>.c, linked with proto/ and config/.
UNIT_BINS := $(patsubst test/unit/%.c,build/unit/%,$(UNIT_SRC))
build/unit/%: build/obj/test/unit/%.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -o $@ $^ $(LDLIBS_ALL) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: build/h2gw build/origin
	H2GW_BIN=build/h2gw ORIGIN_BIN=build/origin /usr/bin/python3 -m pytest -q test/integration

integration-asan: build/asan/h2gw build/origin
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	H2GW_BIN=build/asan/h2gw H2GW_SANITIZED=1 ORIGIN_BIN=build/origin \
	/usr/bin/python3 -m pytest -q test/integration

asan: build/asan/h2gw

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) integration-asan

run: all
	@bash scripts/run.sh

bench: all
	@bash scripts/bench-peers

format:
	clang-format -i $(GATEWAY_SRC) $(PROTO_SRC) $(CONFIG_SRC) $(ORIGIN_SRC) $(UNIT_SRC) */*.h gateway/*/*.h test/*/*.h 2>/dev/null || true

check-format:
	clang-format --dry-run --Werror $(GATEWAY_SRC) $(PROTO_SRC) $(CONFIG_SRC) $(wildcard */*.h)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

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
LIB_OBJS = $(patsubst %.c,build/obj/%.o,$(PROTO_SRC) $(CONFIG_SRC) gateway/core/err.c gateway/client/h2_mem.c \
                                     gateway/client/h2_glitch.c) \
           $(patsubst %.c,build/obj/llhttp/%.o,$(LLHTTP_SRC))

.SECONDARY:
.PHONY: all deps test unit unit-asan integration integration-asan asan h2spec run bench soak \
        clean format check-format fuzz fuzz-build fuzz-regress
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

# The allocation-failure tests put test/unit/failalloc.c in place of the
# allocator for every object they link (proto/, config/ and the test).
WRAP_ALLOC := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=free,--wrap=fopen
build/unit/test_alloc_failures: build/obj/test/unit/test_alloc_failures.o build/obj/test/unit/failalloc.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WRAP_ALLOC) -o $@ $^ $(LDLIBS_ALL) -lcmocka

# The pool's test runs the real pool and servers over a fake transport
# (test/unit/fake_h1conn.c in place of gateway/backend/h1conn.c).
POOL_TEST_SRC := gateway/backend/pool.c gateway/backend/server.c gateway/core/ctx.c \
                 gateway/core/log.c gateway/core/metrics.c test/unit/fake_h1conn.c
build/unit/test_pool: build/obj/test/unit/test_pool.o $(patsubst %.c,build/obj/%.o,$(POOL_TEST_SRC)) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -o $@ $^ $(LDLIBS_ALL) -lcmocka

# The metrics test renders pages and asks the admin's router (gateway/ops).
METRICS_TEST_SRC := gateway/ops/metrics.c gateway/ops/admin.c gateway/core/metrics.c \
                    gateway/core/log.c
build/unit/test_metrics: build/obj/test/unit/test_metrics.o $(patsubst %.c,build/obj/%.o,$(METRICS_TEST_SRC)) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -o $@ $^ $(LDLIBS_ALL) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The same unit tests built with ASan+UBSan; LeakSanitizer is on, so a test
# that leaks fails.
UNIT_ASAN_BINS := $(patsubst test/unit/%.c,build/asan/unit/%,$(UNIT_SRC))
ASAN_LIB_OBJS = $(patsubst build/obj/%,build/asan/obj/%,$(LIB_OBJS))
build/asan/unit/%: build/asan/obj/test/unit/%.o $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

build/asan/unit/test_alloc_failures: build/asan/obj/test/unit/test_alloc_failures.o build/asan/obj/test/unit/failalloc.o $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(SAN_FLAGS) $(WRAP_ALLOC) -o $@ $^ $(LDLIBS_ALL) -lcmocka

build/asan/unit/test_pool: build/asan/obj/test/unit/test_pool.o $(patsubst %.c,build/asan/obj/%.o,$(POOL_TEST_SRC)) $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

build/asan/unit/test_metrics: build/asan/obj/test/unit/test_metrics.o $(patsubst %.c,build/asan/obj/%.o,$(METRICS_TEST_SRC)) $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

unit-asan: $(UNIT_ASAN_BINS)
	@set -e; for t in $(UNIT_ASAN_BINS); do echo "== $$t"; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t; done

# libFuzzer targets, one per parser: test/fuzz/fuzz_<name>.c, seeds in
# test/fuzz/corpus/fuzz_<name>/. clang builds them (gcc has no libFuzzer);
# what a run discovers goes to build/fuzz/corpus/, never into the seeds.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRC     := $(wildcard test/fuzz/fuzz_*.c)
FUZZ_BINS    := $(patsubst test/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_OBJS = $(patsubst %.c,build/fuzz/obj/%.o,$(PROTO_SRC) $(CONFIG_SRC)) \
                $(patsubst %.c,build/fuzz/obj/llhttp/%.o,$(LLHTTP_SRC))

build/fuzz/obj/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_LLHTTP) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_ALL) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

build/fuzz/%: build/fuzz/obj/test/fuzz/%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(OPT) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS_ALL)

# fuzz_h2_session drives a whole HTTP/2 server session (issue 13): it links
# every gateway module but main.c, built with the same flags.
FUZZ_GW_OBJS = $(patsubst %.c,build/fuzz/obj/%.o,$(filter-out gateway/main.c,$(GATEWAY_SRC)))
build/fuzz/fuzz_h2_session: build/fuzz/obj/test/fuzz/fuzz_h2_session.o $(FUZZ_GW_OBJS) $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(OPT) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS_ALL)

fuzz-build: $(FUZZ_BINS)

# Every seed and every saved finding runs once, as a regression test.
fuzz-regress: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_BINS); do n=$$(basename $$t); \
	echo "== $$n: $$(ls test/fuzz/corpus/$$n | wc -l) corpus inputs"; \
	$$t -runs=0 test/fuzz/corpus/$$n >build/fuzz/$$n.regress.log 2>&1 || \
	{ tail -n 40 build/fuzz/$$n.regress.log; exit 1; }; done

fuzz: $(FUZZ_BINS)
	@bash test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

integration: build/h2gw build/origin
	H2GW_BIN=build/h2gw ORIGIN_BIN=build/origin /usr/bin/python3 -m pytest -q test/integration

integration-asan: build/asan/h2gw build/origin
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	H2GW_BIN=build/asan/h2gw H2GW_SANITIZED=1 ORIGIN_BIN=build/origin \
	/usr/bin/python3 -m pytest -q test/integration

asan: build/asan/h2gw

# HTTP/2 conformance (h2spec over h2c and TLS); skipped with a message when
# no h2spec binary is found (H2SPEC, else ../shared/bin/h2spec).
h2spec: build/h2gw build/origin
	@bash scripts/h2spec.sh

test: deps
	$(MAKE) check-format
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-asan
	$(MAKE) fuzz-regress
	$(MAKE) fuzz FUZZ_SECONDS=10
	$(MAKE) h2spec
	$(MAKE) integration
	$(MAKE) integration-asan
	scripts/soak 20

run: all
	@bash scripts/run.sh

bench: all
	@bash scripts/bench-peers

# Fault injection under load against nginx (SOAK_SECONDS, default 60).
soak: all
	scripts/soak

FORMAT_SRC = $(GATEWAY_SRC) $(PROTO_SRC) $(CONFIG_SRC) $(wildcard */*.h gateway/*/*.h) \
             $(wildcard test/unit/*.c test/unit/*.h test/fuzz/*.c test/fuzz/*.h)

format:
	clang-format -i $(FORMAT_SRC) $(ORIGIN_SRC) $(wildcard test/origin/*.h)

check-format:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build

# `make install PREFIX=/usr DESTDIR=/tmp/stage`: the binary, its man page, the
# example configs and the systemd unit (its ExecStart rewritten to this
# PREFIX). Depends on build/h2gw only, so an up-to-date build is not redone.
# Nothing goes to /etc: a config there is the administrator's, never replaced.
PREFIX      ?= /usr/local
DESTDIR     ?=
INSTALL     ?= install
BINDIR      := $(PREFIX)/bin
MAN1DIR     := $(PREFIX)/share/man/man1
DATADIR     := $(PREFIX)/share/h2gw
UNITDIR     := $(PREFIX)/lib/systemd/system
SYSUSERSDIR := $(PREFIX)/lib/sysusers.d

.PHONY: install uninstall
install: build/h2gw
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN1DIR) $(DESTDIR)$(DATADIR)/examples \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	$(INSTALL) -m 0755 build/h2gw $(DESTDIR)$(BINDIR)/h2gw
	$(INSTALL) -m 0644 doc/h2gw.1 $(DESTDIR)$(MAN1DIR)/h2gw.1
	$(INSTALL) -m 0644 config/h2gw.conf $(DESTDIR)$(DATADIR)/h2gw.conf
	$(INSTALL) -m 0644 config/examples/*.conf $(DESTDIR)$(DATADIR)/examples/
	sed 's|/usr/local/bin/h2gw|$(BINDIR)/h2gw|g' deploy/systemd/h2gw.service > $(DESTDIR)$(UNITDIR)/h2gw.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/h2gw.service
	$(INSTALL) -m 0644 deploy/systemd/h2gw.sysusers $(DESTDIR)$(SYSUSERSDIR)/h2gw.conf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/h2gw $(DESTDIR)$(MAN1DIR)/h2gw.1 $(DESTDIR)$(UNITDIR)/h2gw.service \
		$(DESTDIR)$(SYSUSERSDIR)/h2gw.conf
	rm -rf $(DESTDIR)$(DATADIR)

-include $(shell find build -name '*.d' 2>/dev/null)

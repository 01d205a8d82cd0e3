# linqwebhooks -- build, test, bench, hardening.
# `make` builds the Lua 5.4 module; `make test` runs everything fast.

LUA54      ?= lua5.4
LUAJIT     ?= luajit
BUSTED     ?= busted
PKG        ?= pkg-config
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN        = -std=c99 -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes
DEFS        = -D_POSIX_C_SOURCE=200809L
DEP_CFLAGS := $(shell $(PKG) --cflags libcurl libcjson openssl 2>/dev/null)
DEP_LIBS   := -lcurl -lcjson -lcrypto
LUA54_INC  := $(shell $(PKG) --cflags lua5.4 2>/dev/null)
JIT_INC    := $(shell $(PKG) --cflags luajit 2>/dev/null)

CORE_SRC   := $(wildcard csrc/*.c)
LUA_SRC    := $(wildcard csrc/lua/*.c)
HDRS       := $(wildcard csrc/*.h csrc/lua/*.h)
ALL_SRC    := $(CORE_SRC) $(LUA_SRC)

B54        := build/5.4
BJIT       := build/jit
BASAN      := build/asan
SO54       := $(B54)/linqwebhooks/core.so
SOJIT      := $(BJIT)/linqwebhooks/core.so
SOASAN     := $(BASAN)/linqwebhooks/core.so
LIBA       := build/lib/liblinqwebhooks.a
CTEST      := build/c/test_core

LPATH      := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
ENV54      := LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(B54)/?.so;;'
ENVJIT     := LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(BJIT)/?.so;;'

.PHONY: demo-run embed emulator env-jit
.PHONY: all luajit env test test54 testjit ctest check-symbols rockspec asan valgrind fuzz bench demo clean lint

all: $(SO54)

luajit: $(SOJIT)

$(SO54): $(ALL_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden -shared $(LUA54_INC) $(DEP_CFLAGS) \
	  -o $@ $(ALL_SRC) $(DEP_LIBS)

$(SOJIT): $(ALL_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden -shared $(JIT_INC) $(DEP_CFLAGS) \
	  -o $@ $(ALL_SRC) $(DEP_LIBS)

# The Lua-free core as a static library for C hosts.
$(LIBA): $(CORE_SRC) $(HDRS) Makefile
	@mkdir -p build/lib/obj
	@for f in $(CORE_SRC); do \
	  $(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(DEP_CFLAGS) -c $$f \
	    -o build/lib/obj/$$(basename $$f .c).o || exit 1; done
	ar rcs $@ build/lib/obj/*.o

$(CTEST): spec/c/test_core.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -Icsrc $(DEP_CFLAGS) -o $@ $< $(LIBA) $(DEP_LIBS)

env:
	@echo "export LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(B54)/?.so;;'"

# The same for the LuaJIT build: eval "$(make -s env-jit)" (after make luajit)
env-jit:
	@echo "export LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(BJIT)/?.so;;'"

ctest: $(CTEST)
	./$(CTEST)

test54: $(SO54) $(SOJIT)
	$(ENV54) $(BUSTED) --lua=$(LUA54) spec

testjit: $(SOJIT)
	$(ENVJIT) $(BUSTED) --lua=$(LUAJIT) spec

test: ctest check-symbols embed test54 testjit

# Only the public C API and luaopen_linqwebhooks_core may be exported.
check-symbols: $(SO54)
	@bad=$$(nm -D --defined-only $(SO54) | awk '$$3 !~ /^(linqwh_|luaopen_linqwebhooks_core$$|_)/ {print $$3}'); \
	if [ -n "$$bad" ]; then echo "unexpected exports: $$bad"; echo "symbols: 0 passed, 1 failed"; exit 1; fi; \
	echo "symbols: 1 passed, 0 failed"

# In-process specs for the memory checkers (the nginx specs run the LuaJIT
# build inside nginx, which these runs do not instrument).
ASAN_SPECS     = $(wildcard spec/0*_spec.lua spec/1*_spec.lua spec/2*_spec.lua spec/3*_spec.lua)
VALGRIND_SPECS = $(wildcard spec/0*_spec.lua spec/1*_spec.lua spec/2*_spec.lua)

# ASan/UBSan: the module is built with sanitizers and the runtime is
# preloaded into the plain lua5.4 interpreter.
ASAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
$(SOASAN): $(ALL_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	gcc $(ASAN_FLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden -shared $(LUA54_INC) $(DEP_CFLAGS) \
	  -o $@ $(ALL_SRC) $(DEP_LIBS)

asan: $(SOASAN) spec/c/test_core.c $(CORE_SRC)
	@mkdir -p build/c
	gcc $(ASAN_FLAGS) $(WARN) $(DEFS) -Icsrc $(DEP_CFLAGS) -o build/c/test_core_asan spec/c/test_core.c $(CORE_SRC) $(DEP_LIBS)
	ASAN_OPTIONS=detect_leaks=1 ./build/c/test_core_asan
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LINQWH_SANITIZED=1 LINQWH_BUILD=$(CURDIR)/$(BASAN) LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(BASAN)/?.so;;' \
	  $(LUA54) /usr/bin/busted --ignore-lua $(ASAN_SPECS)

VALGRIND = valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	   --show-leak-kinds=definite --suppressions=$(CURDIR)/spec/valgrind.supp
valgrind: $(SO54) $(CTEST)
	$(VALGRIND) ./$(CTEST)
	LINQWH_VALGRIND=1 $(ENV54) $(VALGRIND) $(LUA54) /usr/bin/busted --ignore-lua $(VALGRIND_SPECS)

FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined $(DEFS) -Icsrc $(DEP_CFLAGS)
# Two harnesses, each run for FUZZ_SECONDS: the verification parsers and
# paths (Lua-free), and the JSON layer through the Lua binding.
fuzz:
	@mkdir -p build/fuzz/corpus build/fuzz/json_corpus
	clang $(FUZZ_FLAGS) -o build/fuzz/fuzz_verify csrc/fuzz/fuzz_verify.c $(CORE_SRC) -lcrypto
	clang $(FUZZ_FLAGS) $(LUA54_INC) -o build/fuzz/fuzz_json csrc/fuzz/fuzz_json.c $(ALL_SRC) -llua5.4 $(DEP_LIBS)
	./build/fuzz/fuzz_verify -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  build/fuzz/corpus csrc/fuzz/corpus
	./build/fuzz/fuzz_json -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=csrc/fuzz/json.dict \
	  build/fuzz/json_corpus csrc/fuzz/json_corpus

# Each benchmark prints its figure next to its floor, measured in the same run.
bench: $(SO54) $(SOJIT) $(LIBA)
	@mkdir -p build/bench
	$(CC) -O2 $(WARN) $(DEFS) -Icsrc $(DEP_CFLAGS) -o build/bench/hmac_floor bench/hmac_floor.c $(LIBA) -lcrypto
	$(CC) -O2 $(WARN) $(DEFS) $(DEP_CFLAGS) -o build/bench/curl_floor bench/curl_floor.c -lcurl
	@echo "== verify (Lua 5.4)"
	$(ENV54) $(LUA54) bench/verify.lua build/bench/hmac_floor
	@echo "== verify (LuaJIT)"
	$(ENVJIT) $(LUAJIT) bench/verify.lua build/bench/hmac_floor
	@echo "== client retrieve() (Lua 5.4, LuaJIT)"
	$(ENV54) $(LUA54) bench/client.lua build/bench/curl_floor
	$(ENVJIT) $(LUAJIT) bench/client.lua build/bench/curl_floor
	@echo "== nginx"
	$(ENV54) $(LUA54) bench/nginx.lua
	@echo "== dispatch (Lua 5.4, LuaJIT)"
	$(ENV54) $(LUA54) bench/dispatch.lua
	$(ENVJIT) $(LUAJIT) bench/dispatch.lua

# Debian packages `make demo` needs: installed when run as root, otherwise
# the exact apt-get line is printed.
DEMO_DEBS = gcc make pkg-config lua5.4 liblua5.4-dev libssl-dev libcurl4-openssl-dev \
            libcjson-dev lua-socket

demo:
	@missing=""; \
	if command -v dpkg >/dev/null 2>&1; then \
	  for p in $(DEMO_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make demo: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing || exit 1; \
	  else \
	    echo "make demo: missing Debian packages; install them with:"; \
	    echo "  sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) demo-run

# (a sub-make, so pkg-config flags are read after any install above)
demo-run: $(SO54)
	@$(ENV54) $(LUA54) examples/demo.lua

# A C host verifying deliveries with csrc/linqwebhooks.h only.
EMBED := build/examples/embed
$(EMBED): examples/embed.c csrc/linqwebhooks.h $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -Icsrc -o $@ $< $(LIBA) -lcrypto

embed: $(EMBED)
	./$(EMBED)

# The emulator in the foreground (Ctrl-C stops it).
emulator: $(SO54)
	$(ENV54) $(LUA54) examples/emulator.lua

# Both rockspecs (scm and the release), from the files that exist.
rockspec:
	$(LUA54) tools/gen_rockspec.lua

# luacheck (.luacheckrc) on the Lua code, cppcheck on the C code.
LINT_LUA = lua spec bench examples tools bin/linqwh
lint:
	@rc=0; \
	luacheck -q $(LINT_LUA) || rc=1; \
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability -Icsrc csrc || rc=1; \
	exit $$rc

clean:
	rm -rf build

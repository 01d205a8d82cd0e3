# linqwebhooks -- build, test, bench, hardening.
# `make` builds the Lua 5.4 module; `make test` runs everything fast.

LUA54      ?= lua5.4
LUAJIT     ?= luajit
BUSTED     ?= busted
PKG        ?= pkg-config
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN        = -std=c99 -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes
DEFS        = -D_POSIX_C_SOURCE=200809L -Icsrc
# compiler flags of pkg-config packages, each asked separately (one missing
# .pc file must not drop the others)
pkg_cflags  = $(foreach p,$(1),$(shell $(PKG) --cflags $(p) 2>/dev/null))
DEP_CFLAGS := $(call pkg_cflags,libcrypto libcjson libcurl)
LUA54_INC  := $(shell $(PKG) --cflags lua5.4 2>/dev/null)
JIT_INC    := $(shell $(PKG) --cflags luajit 2>/dev/null)
ASAN_FLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

# the Lua-free core (public C API, csrc/linqwebhooks.h); util.c goes into every Lua module
LIB_SRC    := $(wildcard csrc/*.c)
UTIL_SRC   := csrc/lua/util.c
HDRS       := $(wildcard csrc/*.h csrc/lua/*.h)

B54        := build/5.4
BJIT       := build/jit
BASAN      := build/asan
LIBA       := build/lib/liblinqwebhooks.a
CTEST      := build/c/test_core

LPATH      := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
ENV54      := LUA_PATH_5_4='$(LPATH)' LUA_CPATH_5_4='$(CURDIR)/$(B54)/?.so;;'
ENVJIT     := LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(BJIT)/?.so;;'

.PHONY: all luajit env env-jit deps test test-run test-lua test54 testjit ctest check-symbols \
        check-runtime rockspec asan valgrind fuzz bench demo demo-run embed emulator clean lint

all:

# ---- Lua C modules ---------------------------------------------------------
# One line per module:  $(eval $(call lwh_module,NAME,SOURCES,LIBS,PKGS))
# builds build/5.4/linqwebhooks/NAME.so, build/jit/linqwebhooks/NAME.so (and
# build/asan/... for `make asan`) from SOURCES plus csrc/lua/util.c, compiled
# with the pkg-config cflags of PKGS and linked with LIBS. One of SOURCES
# defines luaopen_linqwebhooks_NAME (LWH_EXPORT): the only symbol the module
# may export (check-symbols).
MODULES :=
define lwh_module
MODULES += $(1)
$(B54)/linqwebhooks/$(1).so: $(2) $(UTIL_SRC) $(HDRS) Makefile
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden -shared $(LUA54_INC) $$(call pkg_cflags,$(4)) \
	  -o $$@ $(2) $(UTIL_SRC) $(3)
$(BJIT)/linqwebhooks/$(1).so: $(2) $(UTIL_SRC) $(HDRS) Makefile
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden -shared $(JIT_INC) $$(call pkg_cflags,$(4)) \
	  -o $$@ $(2) $(UTIL_SRC) $(3)
$(BASAN)/linqwebhooks/$(1).so: $(2) $(UTIL_SRC) $(HDRS) Makefile
	@mkdir -p $$(@D)
	gcc $(ASAN_FLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden -shared $(LUA54_INC) $$(call pkg_cflags,$(4)) \
	  -o $$@ $(2) $(UTIL_SRC) $(3)
endef

# the runtime module nginx workers load: verification + JSON, libcrypto and cJSON only
CORE_MOD_SRC := $(LIB_SRC) csrc/lua/core.c csrc/lua/verify.c csrc/lua/json.c csrc/lua/fileinfo.c
$(eval $(call lwh_module,core,$(CORE_MOD_SRC),-lcjson -lcrypto,libcrypto libcjson))
# tooling: the libcurl client transport; signals, kill, chmod, clock
$(eval $(call lwh_module,http,csrc/lua/http.c,-lcurl,libcurl))
$(eval $(call lwh_module,process,csrc/lua/process.c,,))
# the inbox and Redis store: hiredis (RESP, blocking connection) and SQLite
$(eval $(call lwh_module,hiredis,csrc/lua/hiredis.c,-lhiredis,hiredis))
$(eval $(call lwh_module,sqlite,csrc/lua/sqlite.c,-lsqlite3,sqlite3))

MODS54     = $(MODULES:%=$(B54)/linqwebhooks/%.so)
MODSJIT    = $(MODULES:%=$(BJIT)/linqwebhooks/%.so)
MODSASAN   = $(MODULES:%=$(BASAN)/linqwebhooks/%.so)

all: $(MODS54)

luajit: $(MODSJIT)

# The Lua-free core as a static library for C hosts.
$(LIBA): $(LIB_SRC) $(HDRS) Makefile
	@mkdir -p build/lib/obj
	@for f in $(LIB_SRC); do \
	  $(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(DEP_CFLAGS) -c $$f \
	    -o build/lib/obj/$$(basename $$f .c).o || exit 1; done
	ar rcs $@ build/lib/obj/*.o

$(CTEST): spec/c/test_core.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) $(DEP_CFLAGS) -o $@ $< $(LIBA) -lcjson -lcrypto

# eval "$(make -s env)": Lua 5.4 reads the *_5_4 variables (build/5.4),
# LuaJIT the plain ones (build/jit, after `make luajit`): each interpreter in
# the shell gets the module built for it.
env:
	@echo "export LUA_PATH_5_4='$(LPATH)' LUA_CPATH_5_4='$(CURDIR)/$(B54)/?.so;;'" \
	  "LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(BJIT)/?.so;;'"

# Only the LuaJIT variables: eval "$(make -s env-jit)"
env-jit:
	@echo "export LUA_PATH='$(LPATH)' LUA_CPATH='$(CURDIR)/$(BJIT)/?.so;;'"

# ---- Debian packages -------------------------------------------------------
# `make deps` installs the packages in .ci/debian-packages (the list .ci/run
# uses) when run as root, otherwise prints the apt-get line; `make test` and
# `make demo` start with it. A package counts as present when dpkg has it
# installed or a command of that name exists (nodejs builds that bundle npm).
DEBS      := $(shell sed 's/\#.*//' .ci/debian-packages 2>/dev/null)
DEMO_DEBS  = gcc make pkg-config lua5.4 liblua5.4-dev libssl-dev libcurl4-openssl-dev \
             libcjson-dev libhiredis-dev libsqlite3-dev lua-socket
DEPS_DEBS ?= $(DEBS)

deps:
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
	  have=" $$(dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' $(DEPS_DEBS) 2>/dev/null | \
	            awk '$$1 == "ii" { printf "%s ", $$2 }')"; \
	  for p in $(DEPS_DEBS); do \
	    case "$$have" in *" $$p "*) continue ;; esac; \
	    command -v "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	  done; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      -o DPkg::Lock::Timeout=600 --no-install-recommends$$missing >/dev/null || exit 1; \
	  else \
	    echo "make deps: missing Debian packages; install them with:"; \
	    echo "  sudo apt-get install -y --no-install-recommends$$missing"; \
	    exit 1; \
	  fi; \
	fi

# ---- tests -----------------------------------------------------------------
ctest: $(CTEST)
	./$(CTEST)

# (test-run is a sub-make, so pkg-config flags are read after any install)
test: deps
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) test-run

test-run: ctest check-symbols check-runtime embed test-lua

# Both busted suites at once, each writing its own log; both are printed and
# reported, and the target fails if either fails.
test-lua: $(MODS54) $(MODSJIT)
	@mkdir -p build
	@$(ENV54) $(BUSTED) --lua=$(LUA54) spec >build/test-5.4.log 2>&1 & p54=$$!; \
	$(ENVJIT) $(BUSTED) --lua=$(LUAJIT) spec >build/test-jit.log 2>&1 & pjit=$$!; \
	wait $$p54; r54=$$?; wait $$pjit; rjit=$$?; \
	echo "== busted, Lua 5.4 (build/test-5.4.log)"; cat build/test-5.4.log; \
	echo "== busted, LuaJIT (build/test-jit.log)"; cat build/test-jit.log; \
	echo "busted: Lua 5.4 $$([ $$r54 = 0 ] && echo passed || echo FAILED)," \
	  "LuaJIT $$([ $$rjit = 0 ] && echo passed || echo FAILED)"; \
	[ $$r54 = 0 ] && [ $$rjit = 0 ]

# one interpreter at a time (the nginx specs use the LuaJIT build in both)
test54: $(MODS54) $(MODSJIT)
	$(ENV54) $(BUSTED) --lua=$(LUA54) spec

testjit: $(MODSJIT)
	$(ENVJIT) $(BUSTED) --lua=$(LUAJIT) spec

# Each module exports only its luaopen_linqwebhooks_<name>; core.so also the
# public C API (linqwh_*).
check-symbols: $(MODS54)
	@pass=0; fail=0; for m in $(MODULES); do \
	  so=$(B54)/linqwebhooks/$$m.so; allow="^(luaopen_linqwebhooks_$$m\$$|_)"; \
	  [ $$m = core ] && allow="^(linqwh_|luaopen_linqwebhooks_core\$$|_)"; \
	  bad=$$(nm -D --defined-only $$so | awk -v re="$$allow" '$$3 !~ re { print $$3 }'); \
	  if [ -n "$$bad" ] || ! nm -D --defined-only $$so | grep -q " luaopen_linqwebhooks_$$m\$$"; then \
	    echo "$$so: unexpected exports:" $$bad; fail=$$((fail + 1)); else pass=$$((pass + 1)); fi; \
	done; echo "symbols: $$pass passed, $$fail failed"; [ $$fail = 0 ]

# The module nginx workers load pulls no libcurl (nor hiredis, sqlite, libssl)
# and imports no signal, kill or chmod.
check-runtime: $(B54)/linqwebhooks/core.so $(BJIT)/linqwebhooks/core.so
	@pass=0; fail=0; for so in $^; do \
	  libs=$$(ldd $$so | grep -Eo 'lib(curl|hiredis|sqlite3|ssl)[^ ]*' | tr '\n' ' '); \
	  calls=$$(nm -D --undefined-only $$so | awk '{ print $$NF }' | \
	           grep -E '^(sigaction|signal|kill|chmod|curl_.*)(@.*)?$$' | tr '\n' ' '); \
	  if [ -n "$$libs$$calls" ]; then echo "$$so: links $$libs imports $$calls"; fail=$$((fail + 1)); \
	  else pass=$$((pass + 1)); fi; \
	done; echo "runtime module: $$pass passed, $$fail failed"; [ $$fail = 0 ]

# In-process specs for the memory checkers (the nginx specs run the LuaJIT
# build inside nginx, which these runs do not instrument).
ASAN_SPECS     = $(wildcard spec/0*_spec.lua spec/1*_spec.lua spec/2*_spec.lua spec/3*_spec.lua) spec/62-redis_client_spec.lua spec/70-inbox_contract_spec.lua spec/73-inbox_sqlite_binding_spec.lua
VALGRIND_SPECS = $(wildcard spec/0*_spec.lua spec/1*_spec.lua spec/2*_spec.lua) spec/62-redis_client_spec.lua spec/70-inbox_contract_spec.lua spec/73-inbox_sqlite_binding_spec.lua

# ASan/UBSan: the modules are built with sanitizers and the runtime is
# preloaded into the plain lua5.4 interpreter.
asan: $(MODSASAN) spec/c/test_core.c $(LIB_SRC)
	@mkdir -p build/c
	gcc $(ASAN_FLAGS) $(WARN) $(DEFS) $(DEP_CFLAGS) -o build/c/test_core_asan spec/c/test_core.c $(LIB_SRC) -lcjson -lcrypto
	ASAN_OPTIONS=detect_leaks=1 ./build/c/test_core_asan
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LINQWH_SANITIZED=1 LINQWH_BUILD=$(CURDIR)/$(BASAN) LUA_PATH_5_4='$(LPATH)' LUA_CPATH_5_4='$(CURDIR)/$(BASAN)/?.so;;' \
	  $(LUA54) /usr/bin/busted --ignore-lua $(ASAN_SPECS)

VALGRIND = valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	   --show-leak-kinds=definite --suppressions=$(CURDIR)/spec/valgrind.supp
valgrind: $(MODS54) $(CTEST)
	$(VALGRIND) ./$(CTEST)
	LINQWH_VALGRIND=1 $(ENV54) $(VALGRIND) $(LUA54) /usr/bin/busted --ignore-lua $(VALGRIND_SPECS)

FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined $(DEFS) $(DEP_CFLAGS)
# Two harnesses, each run for FUZZ_SECONDS: the verification parsers and
# paths (Lua-free), and the JSON layer through the Lua binding.
fuzz:
	@mkdir -p build/fuzz/corpus build/fuzz/json_corpus
	clang $(FUZZ_FLAGS) -o build/fuzz/fuzz_verify csrc/fuzz/fuzz_verify.c $(LIB_SRC) -lcrypto
	clang $(FUZZ_FLAGS) $(LUA54_INC) -o build/fuzz/fuzz_json csrc/fuzz/fuzz_json.c $(CORE_MOD_SRC) $(UTIL_SRC) -llua5.4 -lcjson -lcrypto
	./build/fuzz/fuzz_verify -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  build/fuzz/corpus csrc/fuzz/corpus
	./build/fuzz/fuzz_json -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=csrc/fuzz/json.dict \
	  build/fuzz/json_corpus csrc/fuzz/json_corpus

# Each benchmark prints its figure next to its floor, measured in the same run.
bench: $(MODS54) $(MODSJIT) $(LIBA)
	@mkdir -p build/bench
	$(CC) -O2 $(WARN) $(DEFS) $(DEP_CFLAGS) -o build/bench/hmac_floor bench/hmac_floor.c $(LIBA) -lcrypto
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
	@echo "== Redis inbox accept (Lua 5.4, LuaJIT)"
	$(ENV54) $(LUA54) bench/redis.lua
	$(ENVJIT) $(LUAJIT) bench/redis.lua
	@echo "== inbox (SQLite, Lua 5.4)"
	$(ENV54) $(LUA54) bench/inbox.lua

# `make demo` installs only what the demo needs (see deps).
demo:
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) deps DEPS_DEBS="$(DEMO_DEBS)"
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) demo-run

# (a sub-make, so pkg-config flags are read after any install above)
demo-run: $(MODS54)
	@$(ENV54) $(LUA54) examples/demo.lua

# A C host verifying deliveries with csrc/linqwebhooks.h only.
EMBED := build/examples/embed
$(EMBED): examples/embed.c csrc/linqwebhooks.h $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $< $(LIBA) -lcrypto

embed: $(EMBED)
	./$(EMBED)

# The emulator in the foreground (Ctrl-C stops it): make emulator [PORT=8787] [VERBOSE=1]
emulator: $(MODS54)
	$(LUA54) examples/emulator.lua $(PORT) $(if $(filter 1 yes true,$(VERBOSE)),--verbose)

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

# The event catalogue: lua/linqwebhooks/catalogue_data.lua generated from
# data/linq-events.json (copy the new research file there, then `make catalogue`).
.PHONY: catalogue prism
catalogue: $(SO54)
	$(ENV54) $(LUA54) tools/gen_catalogue.lua data/linq-events.json lua/linqwebhooks/catalogue_data.lua

# Prism (OpenAPI validation proxy) and js-yaml into build/node, for
# spec/30-contract_prism_spec.lua, and the official Node SDK (its
# webhooks.unwrap) for spec/30-sdk_unwrap_spec.lua (pending without them;
# CI installs them).
PRISM_VERSION ?= 5.14.2
LINQ_SDK_VERSION ?= 0.28.2
prism:
	npm install --prefix build/node --no-audit --no-fund --silent \
	  @stoplight/prism-cli@$(PRISM_VERSION) js-yaml@4 @linqapp/sdk@$(LINQ_SDK_VERSION)

# Two receivers (plain Lua + nginx when available) and two workers on one Redis
# inbox (a redis-server of its own), the emulator delivering; LINQ_INBOX=sqlite: SQLite
.PHONY: scale-out
scale-out: $(MODS54) $(MODSJIT)
	$(ENV54) $(LUA54) examples/scale-out/run.lua

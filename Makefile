# pinniped: build, test, bench. `make deps` once (root or sudo), then `make`.
# ARCH picks the target: amd64, arm64 or armhf (ARMv7 hard-float). Another
# ARCH than the machine's builds with Debian's cross g++ into build/ARCH,
# links everything statically and runs the test binaries under qemu-user.
ARCHES       := amd64 arm64 armhf
HOST_ARCH    := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
ARCH         ?= $(HOST_ARCH)
TRIPLE_amd64 := x86_64-linux-gnu
TRIPLE_arm64 := aarch64-linux-gnu
TRIPLE_armhf := arm-linux-gnueabihf
ifeq ($(filter $(ARCH),$(ARCHES)),)
$(error ARCH must be one of $(ARCHES), not "$(ARCH)")
endif
ifeq ($(ARCH),$(HOST_ARCH))
BUILD    ?= build
else
BUILD    ?= build/$(ARCH)
CXX      := $(TRIPLE_$(ARCH))-g++
CROSS    := 1
endif
DEPS     := build/deps
HTTPLIB  := $(DEPS)/include/httplib.h
HTTPLIB_CC := $(DEPS)/src/httplib.cc
# mbedTLS built by tools/build-mbedtls.sh from Debian's source with our
# configuration: its headers in $(DEPS)/include (found before
# /usr/include), its libraries per architecture; cpp-httplib's definitions
# as libhttplib.a beside them (below). LIBDEPS: both, for this ARCH.
MBEDTLS_LIBDIR = $(DEPS)/lib/$(ARCH)
LIBDEPS   = $(MBEDTLS_LIBDIR)/.stamp $(MBEDTLS_LIBDIR)/libhttplib.a
VERSION  := 0.1.0

WARN     := -Wall -Wextra -Werror -Wno-psabi
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -pthread -isystem $(DEPS)/include -DPINNIPED_VERSION='"$(VERSION)"'
# mbedTLS and libyaml linked statically: the binary needs only libc/libstdc++.
LIBS     := -L$(MBEDTLS_LIBDIR) -Wl,-Bstatic -lhttplib -lmbedtls -lmbedx509 -lmbedcrypto -lyaml -Wl,-Bdynamic -lcrypt -pthread
STATIC_FLAGS := -Os -ffunction-sections -fdata-sections -static -Wl,--gc-sections
ifdef CROSS
# Cross-built programs and suites are fully static: qemu-user runs them with
# no foreign sysroot.
CXXFLAGS := $(filter-out -g,$(CXXFLAGS))
LIBS     := -L$(MBEDTLS_LIBDIR) -static -lhttplib -lmbedtls -lmbedx509 -lmbedcrypto -lyaml -lcrypt -pthread
endif
# The program itself compiles cpp-httplib's definitions with main.cpp
# (tools/program.cpp): not libhttplib.a (nor the sanitizer and fuzzing
# builds, which instrument their own copy).
PROGRAM_LIBS = $(filter-out -lhttplib,$(LIBS))
# The shipped binary per architecture: fully static and stripped.
STATIC_BIN := build/static/$(ARCH)/pinniped

TEST_SRCS := $(wildcard tests/test_*.cpp)
TEST_SUITES := $(patsubst tests/%.cpp,%,$(TEST_SRCS))
# Test code is built for compiling fast (-O0: the suites take a third of
# the -O2 time) and the product it runs is not: the pinniped binary, the
# static ones and the benchmarks keep CXXFLAGS.
TEST_CXXFLAGS ?= -O0 -g
ifdef CROSS
TEST_CXXFLAGS := $(filter-out -g,$(TEST_CXXFLAGS))
endif
# And it is compiled by Debian's clang, which at -O0 takes half of g++'s
# time on these suites (another ARCH through --target and Debian's cross
# toolchain), against the same libstdc++; the product, the benchmarks and
# the sanitizer build stay on g++.
# `override`: TEST_CXX or TEST_CXXFLAGS given on the command line still get
# the target and the language settings.
TEST_CXX ?= clang++
ifdef CROSS
override TEST_CXX := $(TEST_CXX) --target=$(TRIPLE_$(ARCH))
endif
override TEST_CXXFLAGS += -std=c++17 -pthread -isystem $(DEPS)/include -DPINNIPED_VERSION='"$(VERSION)"'
# The suites of tests/test_*.cpp are one binary of UNITY_GROUPS translation
# units (tools/unity.sh): the header is compiled that many times, not once
# per suite. tools/run-tests.sh runs it once per suite ("suite:BIN:NAME").
# Another ARCH's suites are one unit: the two ARM architectures are built
# side by side, which keeps both cores busy with one header compile each.
ifdef CROSS
UNITY_GROUPS ?= 1
else
UNITY_GROUPS ?= 2
endif
SUITES_BIN := $(BUILD)/tests/suites
TEST_ENTRIES = $(foreach s,$(TEST_SUITES),suite:$(abspath $(SUITES_BIN)):$(s))
ASAN_DIR  := $(BUILD)/asan
# -Wno-maybe-uninitialized: GCC 12 false positive inside <regex> at -O1 with sanitizers.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -Wno-maybe-uninitialized

.PHONY: FORCE all deps static test test-bins cross-test-bins image test-asan e2e bench bench-kubectl demo docs clean format check-format manifests fuzz
all: $(BUILD)/pinniped

deps:
	tools/deps.sh

# One fetch writes both halves of the split header (a grouped target).
$(HTTPLIB) $(HTTPLIB_CC) &: tools/fetch-httplib.sh
	tools/fetch-httplib.sh $(HTTPLIB)
# cpp-httplib's definitions, split off its header by tools/fetch-httplib.sh,
# compiled once per architecture (not again in every translation unit), with
# the settings pinniped.hpp gives the header before including it.
HTTPLIB_DEFS := -DCPPHTTPLIB_USE_POLL -DCPPHTTPLIB_LISTEN_BACKLOG=1024
$(DEPS)/lib/%/libhttplib.a: $(HTTPLIB_CC)
	@test -n "$(TRIPLE_$*)" || { echo "unknown architecture \"$*\" (one of $(ARCHES))"; exit 1; }
	@mkdir -p $(@D)
	$(TRIPLE_$*)-g++ -std=c++17 -pthread -isystem $(DEPS)/include $(HTTPLIB_DEFS) -Os -ffunction-sections \
	  -fdata-sections -c -o $@.o.tmp.$$$$ $(DEPS)/src/httplib.cc && $(TRIPLE_$*)-ar rcs $@.tmp.$$$$ $@.o.tmp.$$$$ && \
	  rm $@.o.tmp.$$$$ && mv $@.tmp.$$$$ $@
.PRECIOUS: $(DEPS)/lib/%/libhttplib.a
$(DEPS)/lib/%/.stamp: tools/build-mbedtls.sh
	tools/build-mbedtls.sh $(DEPS) $*
# Reached through the pattern only, but not a file to delete afterwards.
.PRECIOUS: $(DEPS)/lib/%/.stamp

ifdef CROSS
# Another architecture's program under test is the shipped static one, with
# its symbols (the tests read them): one compile of main.cpp, not two.
$(BUILD)/pinniped: build/static/$(ARCH)/pinniped.debug
	@mkdir -p $(@D)
	cp $< $@.tmp.$$$$ && mv $@.tmp.$$$$ $@
else
$(BUILD)/pinniped: main.cpp tools/program.cpp pinniped.hpp $(HTTPLIB_CC) $(LIBDEPS)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -isystem $(DEPS)/src -o $@.tmp.$$$$ tools/program.cpp $(PROGRAM_LIBS) && mv $@.tmp.$$$$ $@
endif

static: $(STATIC_BIN)
# The shipped binary is the stripped copy of pinniped.debug.
build/static/%/pinniped.debug: main.cpp tools/program.cpp pinniped.hpp $(HTTPLIB_CC) $(DEPS)/lib/%/.stamp
	@test -n "$(TRIPLE_$*)" || { echo "unknown architecture \"$*\" (one of $(ARCHES))"; exit 1; }
	@mkdir -p $(@D)
	$(TRIPLE_$*)-g++ -std=c++17 -pthread -isystem $(DEPS)/include -DPINNIPED_VERSION='"$(VERSION)"' $(WARN) \
	  $(STATIC_FLAGS) -o $@.tmp.$$$$ -I. -isystem $(DEPS)/src tools/program.cpp -L$(DEPS)/lib/$* -lmbedtls -lmbedx509 -lmbedcrypto -lyaml -lcrypt && mv $@.tmp.$$$$ $@
.PRECIOUS: build/static/%/pinniped.debug
build/static/%/pinniped: build/static/%/pinniped.debug
	$(TRIPLE_$*)-strip --strip-all -o $@.tmp.$$$$ $< && mv $@.tmp.$$$$ $@
	@echo "static binary $*: $$(stat -c %s $@) bytes, $$(gzip -9nc $@ | wc -c) gzipped"

# Tests: the Catch2 suites of tests/test_*.cpp in one binary (above).
$(BUILD)/tests/catch_main.o: tests/catch_main.cpp
	@mkdir -p $(@D)
	$(TEST_CXX) $(TEST_CXXFLAGS) -c -o $@ $<
UNITY_SRCS := $(foreach k,$(shell seq $(UNITY_GROUPS)),$(BUILD)/tests/unity-$(k).cpp)
# Rewritten only when its text changes (FORCE runs the script every time),
# and kept (not an intermediate file make would delete).
.SECONDARY: $(UNITY_SRCS) $(patsubst $(BUILD)/tests/%,$(ASAN_DIR)/%,$(UNITY_SRCS)) $(BUILD)/tests/delivery/unity.cpp
$(BUILD)/tests/unity-%.cpp: tools/unity.sh FORCE
	@tools/unity.sh $@ $* $(UNITY_GROUPS) $(TEST_SRCS)
# -MMD: each unit's object depends on the suites and headers it includes.
$(BUILD)/tests/unity-%.o: $(BUILD)/tests/unity-%.cpp $(HTTPLIB) $(LIBDEPS)
	$(TEST_CXX) $(TEST_CXXFLAGS) $(WARN) -I. -MMD -MP -c -o $@ $<
$(SUITES_BIN): $(UNITY_SRCS:.cpp=.o) $(BUILD)/tests/catch_main.o
	$(TEST_CXX) $(TEST_CXXFLAGS) -o $@.tmp.$$$$ $^ $(LIBS) && mv $@.tmp.$$$$ $@
-include $(wildcard $(BUILD)/tests/*.d $(BUILD)/tests/delivery/*.d $(ASAN_DIR)/*.d)
# Nothing makes them but the compiler (and no implicit rule should try).
%.d: ;
# One suite on its own, for working on it: make build/tests/test_cli.
$(BUILD)/tests/test_%: tests/test_%.cpp $(BUILD)/tests/catch_main.o pinniped.hpp $(wildcard tests/*.hpp) $(HTTPLIB) $(LIBDEPS)
	$(TEST_CXX) $(TEST_CXXFLAGS) $(WARN) -I. -o $@.tmp.$$$$ $< $(BUILD)/tests/catch_main.o $(LIBS) && mv $@.tmp.$$$$ $@

# The README's two example programs, compiled as they are written but in one
# unit (the header once, not twice); the program runs the one its name says.
README_EXAMPLES := $(BUILD)/readme_example.cpp $(BUILD)/readme_login_example.cpp
$(BUILD)/readme-examples: $(BUILD)/readme_examples.cpp $(README_EXAMPLES) pinniped.hpp $(HTTPLIB) $(LIBDEPS)
	$(TEST_CXX) $(TEST_CXXFLAGS) $(WARN) -I. -o $@.tmp.$$$$ $< $(LIBS) && mv $@.tmp.$$$$ $@
$(BUILD)/readme_examples.cpp: $(README_EXAMPLES) tools/extract-example.sh
	tools/extract-example.sh --join $(README_EXAMPLES) > $@
$(BUILD)/readme-example $(BUILD)/readme-login-example: $(BUILD)/readme-examples
	ln -f $< $@
$(BUILD)/readme_example.cpp: README.md tools/extract-example.sh
	@mkdir -p $(@D)
	tools/extract-example.sh README.md > $@
$(BUILD)/readme_login_example.cpp: README.md tools/extract-example.sh
	@mkdir -p $(@D)
	tools/extract-example.sh README.md login > $@

# The e2e suite runs inside the network namespace of tests/e2e/cluster.sh.
$(BUILD)/tests/e2e/test_e2e: tests/e2e/test_e2e.cpp $(BUILD)/tests/catch_main.o pinniped.hpp tests/support.hpp $(HTTPLIB) $(LIBDEPS)
	@mkdir -p $(@D)
	$(TEST_CXX) $(TEST_CXXFLAGS) $(WARN) -I. -o $@.tmp.$$$$ $< $(BUILD)/tests/catch_main.o $(LIBS) && mv $@.tmp.$$$$ $@

# Suites built outside ARCH's set: the shipped artifacts (image, manifests,
# docs, the static binary's name resolution). They run on the build machine.
DELIVERY_SRCS := $(wildcard tests/delivery/test_*.cpp)
DELIVERY_BIN := $(BUILD)/tests/delivery/suites
DELIVERY_ENTRIES = $(foreach s,$(patsubst tests/delivery/%.cpp,%,$(DELIVERY_SRCS)),suite:$(abspath $(DELIVERY_BIN)):$(s))
$(BUILD)/tests/delivery/unity.cpp: tools/unity.sh FORCE
	@tools/unity.sh $@ 1 1 $(DELIVERY_SRCS)
$(BUILD)/tests/delivery/unity.o: $(BUILD)/tests/delivery/unity.cpp $(HTTPLIB) $(LIBDEPS)
	$(TEST_CXX) $(TEST_CXXFLAGS) $(WARN) -I. -MMD -MP -c -o $@ $<
$(DELIVERY_BIN): $(BUILD)/tests/delivery/unity.o $(BUILD)/tests/catch_main.o
	$(TEST_CXX) $(TEST_CXXFLAGS) -o $@.tmp.$$$$ $^ $(LIBS) && mv $@.tmp.$$$$ $@

# No binfmt_misc here: cross-built programs that tests start (the pinniped
# binary, the README examples) are reached through small qemu-user wrappers.
QEMU_amd64 := qemu-x86_64-static
QEMU_arm64 := qemu-aarch64-static
QEMU_armhf := qemu-arm-static
$(BUILD)/run/%: $(BUILD)/%
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec %s %s "$$@"\n' $(QEMU_$(ARCH)) $(abspath $<) >$@ && chmod +x $@

CROSS_ARCHES := $(filter-out $(HOST_ARCH),$(ARCHES))
ifdef CROSS
# `make test ARCH=arm64`: ARCH's unit and loopback suites under qemu-user.
test-bins: $(BUILD)/pinniped $(STATIC_BIN) $(SUITES_BIN) $(BUILD)/run/pinniped $(BUILD)/run/readme-example \
	  $(BUILD)/run/readme-login-example
test: test-bins
	tools/test.sh --cross $(ARCH) $(BUILD) $(TEST_ENTRIES)
else
# `make test`: every suite of this machine's ARCH, the delivery suites, the
# other ARCHes' suites under qemu-user, and the real-cluster e2e; one count.
# The program under test is the shipped static binary with its symbols, as
# on the other architectures: main.cpp is compiled once per architecture
# (build/pinniped, at -O2 and linked dynamically, is for the demo and the
# benchmarks).
TESTED_BIN := build/static/$(ARCH)/pinniped.debug
test-bins: $(TESTED_BIN) $(STATIC_BIN) $(SUITES_BIN) $(DELIVERY_BIN) $(BUILD)/readme-example \
	  $(BUILD)/readme-login-example $(BUILD)/tests/e2e/test_e2e image
# The other architectures' static binaries are made here first, once (the
# image needs them too), and then their suites, each architecture in a make
# of its own, side by side (they share the job slots of -j). No file has the
# name of a cross-test-bins-ARCH target: it always runs (a pattern rule
# cannot be .PHONY).
cross-test-bins: $(foreach a,$(CROSS_ARCHES),cross-test-bins-$(a))
cross-test-bins-%: build/static/%/pinniped build/static/%/pinniped.debug
	@$(MAKE) --no-print-directory ARCH=$* test-bins
test: test-bins cross-test-bins
	PINNIPED_BIN=$(abspath $(TESTED_BIN)) PINNIPED_EXAMPLE=$(abspath $(BUILD)/readme-example) \
	  PINNIPED_STATIC=$(abspath $(STATIC_BIN)) PINNIPED_IMAGE=$(abspath $(IMAGE)) PINNIPED_STATIC_DIR=$(abspath build/static) \
	  CROSS_ARCHES="$(CROSS_ARCHES)" UNIT_SUITES="$(TEST_SUITES)" tools/test.sh $(BUILD) $(TEST_ENTRIES) \
	  $(DELIVERY_ENTRIES)
endif

# Only the real-cluster suite (root).
e2e: $(BUILD)/pinniped $(BUILD)/tests/e2e/test_e2e
	PINNIPED_BIN=$(abspath $(BUILD)/pinniped) CROSS_ARCHES= E2E_PROFILES="$(E2E_PROFILES)" tools/test.sh $(BUILD)

# The same suites and program under AddressSanitizer + UBSan, cpp-httplib's
# definitions instrumented too (in the program's unit, and as an object of
# their own for the suites).
$(ASAN_DIR)/pinniped: main.cpp tools/program.cpp pinniped.hpp $(HTTPLIB_CC) $(LIBDEPS)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) $(WARN) -I. -isystem $(DEPS)/src -o $@ tools/program.cpp $(PROGRAM_LIBS)
$(ASAN_DIR)/httplib.o: $(HTTPLIB_CC)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) -isystem $(DEPS)/include $(HTTPLIB_DEFS) -c -o $@ $(DEPS)/src/httplib.cc
$(ASAN_DIR)/catch_main.o: tests/catch_main.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) -c -o $@ $<
$(ASAN_DIR)/unity-%.cpp: tools/unity.sh FORCE
	@tools/unity.sh $@ $* $(UNITY_GROUPS) $(TEST_SRCS)
$(ASAN_DIR)/unity-%.o: $(ASAN_DIR)/unity-%.cpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) $(WARN) -I. -MMD -MP -c -o $@ $<
$(ASAN_DIR)/suites: $(patsubst $(BUILD)/tests/%,$(ASAN_DIR)/%,$(UNITY_SRCS:.cpp=.o)) $(ASAN_DIR)/catch_main.o \
	  $(ASAN_DIR)/httplib.o
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) -o $@ $^ $(PROGRAM_LIBS)
test-asan: $(ASAN_DIR)/pinniped $(ASAN_DIR)/suites $(BUILD)/readme-example $(BUILD)/readme-login-example $(STATIC_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  PINNIPED_BIN=$(abspath $(ASAN_DIR)/pinniped) PINNIPED_STATIC=$(abspath $(STATIC_BIN)) PINNIPED_SLOW=4 PINNIPED_EXAMPLE=$(abspath $(BUILD)/readme-example) \
	  tools/run-tests.sh $(foreach s,$(TEST_SUITES),suite:$(abspath $(ASAN_DIR)/suites):$(s))

$(BUILD)/bench-exchange: bench/exchange.cpp pinniped.hpp tests/support.hpp tests/jwt_keys.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/bench-local-user-authenticator: bench/local_user_authenticator.cpp pinniped.hpp tests/support.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/bench-crypto-floor: bench/crypto_floor.cpp pinniped.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/bench-exchange-phases: bench/exchange_phases.cpp pinniped.hpp tests/support.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/bench-jwt: bench/jwt.cpp pinniped.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
bench: $(BUILD)/pinniped $(STATIC_BIN) $(IMAGE) $(BUILD)/bench-exchange $(BUILD)/bench-local-user-authenticator \
	  $(BUILD)/bench-crypto-floor $(BUILD)/bench-exchange-phases $(BUILD)/bench-jwt build/static/$(HOST_ARCH)/pinniped.debug
	tools/instructions.sh $(BUILD)/bench-crypto-floor
	tools/phases.sh $(BUILD)/bench-exchange-phases 20 $(BUILD)/bench-crypto-floor
	$(BUILD)/bench-jwt
	$(BUILD)/bench-exchange --pinniped $(BUILD)/pinniped --static $(STATIC_BIN)
	$(BUILD)/bench-local-user-authenticator --pinniped $(BUILD)/pinniped
	tools/budgets.sh $(IMAGE) build/static
	tools/size-contributors.sh $(HOST_ARCH)
	@$(MAKE) --no-print-directory bench-kubectl

# kubectl through the exec plugin vs a static certificate, and the CSR
# strategy vs signer files, against the real kube-apiserver (and
# kube-controller-manager): needs root (the e2e cluster's network namespace); skipped
# otherwise, or while another e2e cluster is up.
$(BUILD)/bench-kubectl-plugin: bench/kubectl_plugin.cpp pinniped.hpp tests/support.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/bench-csr-strategy: bench/csr_strategy.cpp pinniped.hpp tests/support.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
bench-kubectl: $(BUILD)/pinniped $(BUILD)/bench-kubectl-plugin $(BUILD)/bench-csr-strategy
	@if [ "$$(id -u)" != 0 ]; then echo "kubectl-plugin benchmark: skipped (needs root for the e2e cluster)"; \
	elif [ -e /run/netns/pinniped-e2e ]; then echo "kubectl-plugin benchmark: skipped (an e2e cluster is up)"; \
	else d=$${BENCH_E2E_DIR:-/tmp/pinniped-bench-e2e}; \
	  tests/e2e/cluster.sh up $$d --profile kubeadm >/dev/null || { echo "kubectl-plugin benchmark: the cluster did not come up"; exit 1; }; \
	  ip netns exec pinniped-e2e $(BUILD)/bench-kubectl-plugin --pinniped $(BUILD)/pinniped --e2e-dir $$d; rc=$$?; \
	  ip netns exec pinniped-e2e $(BUILD)/bench-csr-strategy --pinniped $(BUILD)/pinniped --e2e-dir $$d || rc=1; \
	  tests/e2e/cluster.sh down $$d >/dev/null 2>&1; exit $$rc; fi

$(BUILD)/demo-idp: tools/demo_idp.cpp pinniped.hpp $(HTTPLIB) $(LIBDEPS)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
demo: $(BUILD)/pinniped $(BUILD)/demo-idp $(BUILD)/readme-example
	DEMO_PROFILE=$(or $(DEMO_PROFILE),k3s) tools/demo.sh $(BUILD)

manifests: manifests/k3s/pinniped.yaml
manifests/k3s/pinniped.yaml: tools/k3s-manifest.sh $(wildcard manifests/concierge/*.yaml manifests/k3s/base/*.yaml)
	tools/k3s-manifest.sh > $@.tmp.$$$$ && mv $@.tmp.$$$$ $@

# A reproducible multi-arch OCI image archive, built without a container
# engine (docs/image.md): the same commit and binaries give the same bytes.
# The tool writes --out atomically (a temporary file, then rename).
IMAGE        := build/image/pinniped.oci.tar
IMAGE_NAME   ?= localhost/pinniped
IMAGE_SOURCE ?= $(shell git config --get remote.origin.url 2>/dev/null || echo 'pinniped (no git remote)')
image: $(IMAGE)
# The revision label follows the commit even when the binaries do not change.
build/image/revision: FORCE
	@mkdir -p $(@D)
	@r=$$(git rev-parse HEAD 2>/dev/null || echo unknown); [ "$$(cat $@ 2>/dev/null)" = "$$r" ] || echo "$$r" >$@
FORCE:
$(IMAGE): tools/oci-image.py build/image/revision $(foreach a,$(ARCHES),build/static/$(a)/pinniped)
	@mkdir -p $(@D)
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct)} python3 tools/oci-image.py --out $@ \
	  --name $(IMAGE_NAME) --version $(VERSION) --revision "$$(cat build/image/revision)" --source "$(IMAGE_SOURCE)" \
	  $(foreach a,$(ARCHES),$(a)=build/static/$(a)/pinniped)

# Diagrams: docs/*.dot rendered to docs/*.svg, committed beside their sources.
DOCS_SVG := $(patsubst %.dot,%.svg,$(wildcard docs/*.dot))
docs: $(DOCS_SVG)
docs/%.svg: docs/%.dot tools/render-docs.sh
	tools/render-docs.sh $<

include fuzz.mk

format:
	clang-format -i pinniped.hpp main.cpp tests/*.cpp tests/*.hpp bench/*.cpp tools/*.cpp
check-format:
	clang-format --dry-run --Werror pinniped.hpp main.cpp

clean:
	rm -rf $(BUILD)/pinniped build/static $(BUILD)/run $(BUILD)/tests $(ASAN_DIR) $(BUILD)/bench-exchange \
	  $(BUILD)/bench-local-user-authenticator $(BUILD)/bench-kubectl-plugin $(BUILD)/bench-csr-strategy \
	  $(BUILD)/bench-crypto-floor $(BUILD)/bench-exchange-phases $(BUILD)/bench-jwt \
	  $(BUILD)/demo-idp $(BUILD)/readme-example $(BUILD)/readme_example.cpp \
	  $(BUILD)/readme-login-example $(BUILD)/readme_login_example.cpp $(BUILD)/readme-examples $(BUILD)/readme_examples.cpp

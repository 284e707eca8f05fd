# pinniped: build, test, bench. `make deps` once (root or sudo), then `make`.
CXX      ?= g++
BUILD    ?= build
DEPS     := $(BUILD)/deps
HTTPLIB  := $(DEPS)/include/httplib.h
VERSION  := 0.1.0

WARN     := -Wall -Wextra -Werror
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -pthread -isystem $(DEPS)/include -DPINNIPED_VERSION='"$(VERSION)"'
# mbedTLS and libyaml linked statically: the binary needs only libc/libstdc++.
LIBS     := -Wl,-Bstatic -lmbedtls -lmbedx509 -lmbedcrypto -lyaml -Wl,-Bdynamic -lcrypt -pthread
STATIC_FLAGS := -Os -ffunction-sections -fdata-sections -static -Wl,--gc-sections -s

TEST_SRCS := $(wildcard tests/test_*.cpp)
TEST_BINS := $(patsubst tests/%.cpp,$(BUILD)/tests/%,$(TEST_SRCS))
ASAN_DIR  := $(BUILD)/asan
# -Wno-maybe-uninitialized: GCC 12 false positive inside <regex> at -O1 with sanitizers.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -Wno-maybe-uninitialized

.PHONY: all deps static test test-asan e2e bench bench-kubectl demo clean format check-format
all: $(BUILD)/pinniped

deps:
	tools/deps.sh

$(HTTPLIB):
	tools/fetch-httplib.sh $@

$(BUILD)/pinniped: main.cpp pinniped.hpp $(HTTPLIB)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(WARN) -o $@.tmp.$$$$ main.cpp $(LIBS) && mv $@.tmp.$$$$ $@

static: $(BUILD)/pinniped-static
$(BUILD)/pinniped-static: main.cpp pinniped.hpp $(HTTPLIB)
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -pthread -isystem $(DEPS)/include -DPINNIPED_VERSION='"$(VERSION)"' $(WARN) $(STATIC_FLAGS) \
	  -o $@ main.cpp -lmbedtls -lmbedx509 -lmbedcrypto -lyaml -lcrypt
	@echo "static binary: $$(stat -c %s $@) bytes, $$(gzip -9c $@ | wc -c) gzipped"

# Tests: one Catch2 binary per tests/test_*.cpp, sharing one main object.
$(BUILD)/tests/catch_main.o: tests/catch_main.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c -o $@ $<
$(BUILD)/tests/%: tests/%.cpp $(BUILD)/tests/catch_main.o pinniped.hpp tests/support.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@.tmp.$$$$ $< $(BUILD)/tests/catch_main.o $(LIBS) && mv $@.tmp.$$$$ $@

$(BUILD)/readme-example: $(BUILD)/readme_example.cpp pinniped.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/readme_example.cpp: README.md tools/extract-example.sh
	@mkdir -p $(@D)
	tools/extract-example.sh README.md > $@
$(BUILD)/readme-login-example: $(BUILD)/readme_login_example.cpp pinniped.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/readme_login_example.cpp: README.md tools/extract-example.sh
	@mkdir -p $(@D)
	tools/extract-example.sh README.md login > $@

# The e2e suite runs inside the network namespace of tests/e2e/cluster.sh.
$(BUILD)/tests/e2e/test_e2e: tests/e2e/test_e2e.cpp $(BUILD)/tests/catch_main.o pinniped.hpp tests/support.hpp $(HTTPLIB)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@.tmp.$$$$ $< $(BUILD)/tests/catch_main.o $(LIBS) && mv $@.tmp.$$$$ $@

test: $(BUILD)/pinniped $(BUILD)/pinniped-static $(TEST_BINS) $(BUILD)/readme-example $(BUILD)/readme-login-example \
	  $(BUILD)/tests/e2e/test_e2e
	PINNIPED_BIN=$(abspath $(BUILD)/pinniped) PINNIPED_EXAMPLE=$(abspath $(BUILD)/readme-example) \
	  tools/test.sh $(BUILD) $(TEST_BINS)

# Only the real-cluster suite (root).
e2e: $(BUILD)/pinniped $(BUILD)/tests/e2e/test_e2e
	PINNIPED_BIN=$(abspath $(BUILD)/pinniped) tools/test.sh $(BUILD)

# The same suites and program under AddressSanitizer + UBSan.
$(ASAN_DIR)/pinniped: main.cpp pinniped.hpp $(HTTPLIB)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) $(WARN) -o $@ main.cpp $(LIBS)
$(ASAN_DIR)/catch_main.o: tests/catch_main.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) -c -o $@ $<
$(ASAN_DIR)/test_%: tests/test_%.cpp $(ASAN_DIR)/catch_main.o pinniped.hpp tests/support.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(ASAN_FLAGS) $(WARN) -I. -o $@ $< $(ASAN_DIR)/catch_main.o $(LIBS)
test-asan: $(ASAN_DIR)/pinniped $(patsubst tests/%.cpp,$(ASAN_DIR)/%,$(TEST_SRCS)) $(BUILD)/readme-example \
	  $(BUILD)/readme-login-example $(BUILD)/pinniped-static
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  PINNIPED_BIN=$(abspath $(ASAN_DIR)/pinniped) PINNIPED_SLOW=4 PINNIPED_EXAMPLE=$(abspath $(BUILD)/readme-example) \
	  tools/run-tests.sh $(patsubst tests/%.cpp,$(ASAN_DIR)/%,$(TEST_SRCS))

$(BUILD)/bench-exchange: bench/exchange.cpp pinniped.hpp tests/support.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
$(BUILD)/bench-local-user-authenticator: bench/local_user_authenticator.cpp pinniped.hpp tests/support.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
bench: $(BUILD)/pinniped $(BUILD)/pinniped-static $(BUILD)/bench-exchange $(BUILD)/bench-local-user-authenticator
	$(BUILD)/bench-exchange --pinniped $(BUILD)/pinniped --static $(BUILD)/pinniped-static
	$(BUILD)/bench-local-user-authenticator --pinniped $(BUILD)/pinniped
	@$(MAKE) --no-print-directory bench-kubectl

# kubectl through the exec plugin vs a static certificate, against the real
# kube-apiserver: needs root (the e2e cluster's network namespace); skipped
# otherwise, or while another e2e cluster is up.
$(BUILD)/bench-kubectl-plugin: bench/kubectl_plugin.cpp pinniped.hpp tests/support.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
bench-kubectl: $(BUILD)/pinniped $(BUILD)/bench-kubectl-plugin
	@if [ "$$(id -u)" != 0 ]; then echo "kubectl-plugin benchmark: skipped (needs root for the e2e cluster)"; \
	elif [ -e /run/netns/pinniped-e2e ]; then echo "kubectl-plugin benchmark: skipped (an e2e cluster is up)"; \
	else d=$${BENCH_E2E_DIR:-/tmp/pinniped-bench-e2e}; \
	  tests/e2e/cluster.sh up $$d >/dev/null || { echo "kubectl-plugin benchmark: the cluster did not come up"; exit 1; }; \
	  ip netns exec pinniped-e2e $(BUILD)/bench-kubectl-plugin --pinniped $(BUILD)/pinniped --e2e-dir $$d; rc=$$?; \
	  tests/e2e/cluster.sh down $$d >/dev/null 2>&1; exit $$rc; fi

$(BUILD)/demo-idp: tools/demo_idp.cpp pinniped.hpp $(HTTPLIB)
	$(CXX) $(CXXFLAGS) $(WARN) -I. -o $@ $< $(LIBS)
demo: $(BUILD)/pinniped $(BUILD)/demo-idp $(BUILD)/readme-example
	tools/demo.sh $(BUILD)

format:
	clang-format -i pinniped.hpp main.cpp tests/*.cpp tests/*.hpp bench/*.cpp tools/*.cpp
check-format:
	clang-format --dry-run --Werror pinniped.hpp main.cpp

clean:
	rm -rf $(BUILD)/pinniped $(BUILD)/pinniped-static $(BUILD)/tests $(ASAN_DIR) $(BUILD)/bench-exchange \
	  $(BUILD)/bench-local-user-authenticator $(BUILD)/bench-kubectl-plugin \
	  $(BUILD)/demo-idp $(BUILD)/readme-example $(BUILD)/readme_example.cpp \
	  $(BUILD)/readme-login-example $(BUILD)/readme_login_example.cpp

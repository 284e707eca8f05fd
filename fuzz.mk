# Fuzzing (fuzz/README.md): one libFuzzer target per parser of untrusted
# bytes, built with Debian's clang, ASan and UBSan into build/fuzz/.
#   make fuzz-build          build every target
#   make -j2 fuzz            run each for FUZZ_SECONDS (two at a time with -j2)
#   make fuzz-run-fuzz_yaml  run one
#   make fuzz-replay         replay seeds and reproducers once (seconds)
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_NAMES   := $(patsubst fuzz/%.cpp,%,$(wildcard fuzz/fuzz_*.cpp))
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/,$(FUZZ_NAMES))
FUZZ_RUNS    := $(addprefix fuzz-run-,$(FUZZ_NAMES))
FUZZ_REPLAYS := $(addprefix fuzz-replay-,$(FUZZ_NAMES))
# cpp-httplib and picojson warn under clang: both come in as system headers
# (-isystem, /usr/include), so -Werror covers only our code.
FUZZ_FLAGS   := -std=c++17 -pthread -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -isystem $(DEPS)/include -I. -Wall -Wextra -Werror
FUZZ_LIBS    := -L$(DEPS)/lib/$(HOST_ARCH) -lmbedtls -lmbedx509 -lmbedcrypto -lyaml -lcrypt
# cpp-httplib's definitions (split off its header), instrumented like the
# targets: compiled once, linked into each.
FUZZ_HTTPLIB := $(FUZZ_DIR)/httplib.o
$(FUZZ_HTTPLIB): $(HTTPLIB_CC)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(subst -fsanitize=fuzzer,-fsanitize=fuzzer-no-link,$(FUZZ_FLAGS)) -w $(HTTPLIB_DEFS) -c -o $@ \
	  $(DEPS)/src/httplib.cc

.PHONY: fuzz-build fuzz-replay fuzz-clean $(FUZZ_RUNS) $(FUZZ_REPLAYS)
fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.cpp fuzz/fuzz.hpp pinniped.hpp $(HTTPLIB) $(DEPS)/lib/$(HOST_ARCH)/.stamp $(FUZZ_HTTPLIB)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@.tmp.$$$$ $< $(FUZZ_HTTPLIB) $(FUZZ_LIBS) && mv $@.tmp.$$$$ $@

# Every target runs even when one crashes (-k); the run fails if any did.
fuzz: fuzz-build
	@$(MAKE) --no-print-directory -k $(FUZZ_RUNS) || { echo "fuzz: a target crashed (reports in $(FUZZ_DIR)/logs)"; exit 1; }
	@echo "fuzz: $(words $(FUZZ_NAMES)) targets, $(FUZZ_SECONDS) s each, no crash"

$(FUZZ_RUNS): fuzz-run-%: $(FUZZ_DIR)/%
	@fuzz/run.sh $< $* $(FUZZ_SECONDS) $(FUZZ_DIR)

fuzz-replay: $(FUZZ_REPLAYS)
$(FUZZ_REPLAYS): fuzz-replay-%: $(FUZZ_DIR)/%
	@set -- $(wildcard fuzz/corpus/$*/* fuzz/regressions/$*/*); [ $$# -gt 0 ] || { echo "$*: no inputs"; exit 1; }; \
	  $< "$$@" >$(FUZZ_DIR)/$*.replay.log 2>&1 && echo "$*: $$# seeds and reproducers pass" || \
	  { echo "$*: FAILS, see $(FUZZ_DIR)/$*.replay.log"; exit 1; }

fuzz-clean:
	rm -rf $(FUZZ_DIR)

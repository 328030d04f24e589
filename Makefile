# The two commands: `make run` (build and start the server) and `make test` (build and run every
# test). Both install what they need first (scripts/setup.sh) and rebuild only what changed.
# GPU=vulkan or GPU=cuda builds llama.cpp's (and whisper.cpp's) GPU backend into build-vulkan/ or
# build-cuda/ (make run GPU=vulkan); the default is a CPU build in build/.
GPU ?=
ifeq ($(GPU),)
BUILD_DIR ?= build
else
BUILD_DIR ?= build-$(GPU)
endif
export GPU
PORT ?= 8000
# ccache: paths relative to the checkout, so a fresh clone elsewhere still hits the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
# Node.js for the UI build: scripts/setup.sh puts a new enough one here when the system's is too old
# (Debian bookworm ships 18; Vite needs 20.19).
export PATH := $(CURDIR)/deps/node/bin:$(PATH)

.PHONY: all setup configure build run test sanitize tsan fuzz clean check-vulkan install deb

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DMYCANDY_GPU=$(GPU)

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR)

# More options for the server: make run RUN_ARGS="--host 0.0.0.0 --https" (see mycandy --help).
RUN_ARGS ?=
run: build
	$(BUILD_DIR)/mycandy serve --port $(PORT) $(RUN_ARGS)

# Installs the server, its web UI, the default settings and the systemd unit under PREFIX
# (cmake/package.cmake has the layout); `make deb` packs the same files as a Debian package in
# $(BUILD_DIR)/ (README, "Installing as a service").
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --component mycandy --prefix $(PREFIX)

deb: build
	cd $(BUILD_DIR) && cpack -G DEB

# Every test, then the unit, engine, API and fuzz-replay tests again against a build of our code
# with AddressSanitizer + UndefinedBehaviorSanitizer (llama.cpp itself stays uninstrumented and
# comes from the compiler cache). The output ends with the sanitized run's ctest summary.
test: build
	cmake --build $(BUILD_DIR) --target mycandy_tests
	cd $(BUILD_DIR) && ctest --output-on-failure -j2
	$(MAKE) --no-print-directory check-vulkan
	$(MAKE) --no-print-directory sanitize

SAN_DIR ?= build-asan
SAN_TARGETS := mycandy unit_tests llm_tests api_tests stt_tests tiny_model whisper_models llama-server \
  $(addprefix fuzz_replay_,json_body settings chat_import sse_parser text_stream uploads stt_audio card_import)
# Leaks are not checked: llama.cpp's (uninstrumented) globals would be reported at every exit.
# Reports also go to build-asan/sanitizer.<pid> (the server's own output is in its test's log).
SAN_LOG = $(CURDIR)/$(SAN_DIR)/sanitizer
export ASAN_OPTIONS := detect_leaks=0:abort_on_error=1:log_path=$(SAN_LOG)
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1:log_path=$(SAN_LOG)

$(SAN_DIR)/build.ninja:
	cmake -S . -B $(SAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DMYCANDY_SANITIZE=address,undefined

sanitize: configure $(SAN_DIR)/build.ninja
	cmake --build $(SAN_DIR) --target $(SAN_TARGETS)
	rm -f $(SAN_LOG).*
	cd $(SAN_DIR) && ctest -L sanitize --output-on-failure -j2 || { cat $(SAN_LOG).* 2>/dev/null; exit 1; }
	@if ls $(SAN_LOG).* >/dev/null 2>&1; then cat $(SAN_LOG).*; echo "sanitizer reports above"; exit 1; fi

# ThreadSanitizer over the engine and chat tests (not part of `make test`: llama.cpp's own threads
# are uninstrumented, so this is a check to run by hand after touching locks).
TSAN_DIR ?= build-tsan
$(TSAN_DIR)/build.ninja:
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DMYCANDY_SANITIZE=thread

tsan: configure $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) --target mycandy unit_tests llm_tests api_tests tiny_model llama-server
	cd $(TSAN_DIR) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest -R "^(LlamaEngine|ChatApi|ChatService|Hardening)" --output-on-failure -j1

# Proves the Vulkan build compiles and links (no GPU needed here): llama.cpp's Vulkan backend with
# its shaders, and mycandy on it, in build-vulkan/ (everything but the Vulkan parts comes from the
# compiler cache). Part of `make test`.
check-vulkan:
	$(MAKE) --no-print-directory GPU=vulkan BUILD_DIR=build-vulkan configure
	cmake --build build-vulkan --target mycandy
	build-vulkan/mycandy --version | grep -q "vulkan build" && build-vulkan/mycandy --version

# Every libFuzzer target for FUZZ_SECONDS each (scripts/fuzz.sh); findings land in build-fuzz/findings/.
FUZZ_SECONDS ?= 600
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR) $(TSAN_DIR) build-fuzz

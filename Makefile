# The two commands: `make run` (build and start the server) and `make test` (build and run every
# test). Both install what they need first (scripts/setup.sh) and rebuild only what changed.
BUILD_DIR ?= build
PORT ?= 8000
# ccache: paths relative to the checkout, so a fresh clone elsewhere still hits the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

.PHONY: all setup configure build run test fuzz clean

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR)

run: build
	$(BUILD_DIR)/mycandy serve --port $(PORT)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j2

# Every libFuzzer target for FUZZ_SECONDS each (scripts/fuzz.sh); findings land in build-fuzz/findings/.
FUZZ_SECONDS ?= 600
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) build-fuzz

# The README's entry points. `make run` and `make test` install missing Debian packages, build, and
# then run a demo generation or the whole test suite.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
ARLE := $(BUILD_DIR)/apps/arle/arle
JOBS ?= $(shell nproc)
# Let ccache share objects between checkouts in different folders (CI builds a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: deps build run test sanitize fuzz clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(ARLE) run --prompt "Once upon a time" --max-tokens 200

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Debug + ASan + UBSan build of everything, then the whole suite.
sanitize:
	@$(MAKE) test PRESET=dev

# Builds the libFuzzer targets (clang); see fuzz/README.md for running them.
fuzz:
	@scripts/install-deps.sh --with-fuzz
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

clean:
	rm -rf build

# The README's entry points. `make run`, `make serve` and `make test` install missing Debian
# packages, build, and then run a demo generation, serve the built-in model on 127.0.0.1:8000, or
# run the whole test suite.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
ARLE := $(BUILD_DIR)/apps/arle/arle
JOBS ?= $(shell nproc)
# Let ccache share objects between checkouts in different folders (CI builds a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: deps build run serve test sanitize tsan cuda fuzz clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(ARLE) run --prompt "Once upon a time" --max-tokens 200

# OpenAI-compatible server on http://127.0.0.1:8000/v1 (Ctrl-C stops it gracefully).
HOST ?= 127.0.0.1
PORT ?= 8000
serve: build
	$(ARLE) serve --host $(HOST) --port $(PORT)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Debug + ASan + UBSan build of everything, then the whole suite.
sanitize:
	@$(MAKE) test PRESET=dev

# ThreadSanitizer build of the concurrent parts (block pool and prefix cache, engine and scheduler,
# HTTP server, OpenAI service, the model forward on the compute pool with f32 and quantized
# matrices) and their tests. CI runs it after `make test`. Each test binary runs once (not once per
# test, as ctest would): a process start under TSan costs seconds. TSan makes a binary exit
# non-zero when it reported a race. arle_models_tests takes about 30 s under TSan (2 loaded cores).
TSAN_TESTS := tests/kv/arle_kv_tests tests/runtime/arle_engine_tests \
	tests/runtime/arle_engine_prompt_logprobs_tests \
	tests/server/arle_http_server_tests tests/server/arle_openai_tests \
	tests/runtime/arle_recurrent_family_tests tests/models/arle_models_tests \
	tests/rl/arle_rl_policy_tests tests/rl/arle_rl_grpo_tests \
	tests/rl/arle_rl_multi_turn_tests tests/rl/arle_rl_remote_tests
tsan:
	@scripts/install-deps.sh
	@cmake --preset tsan >/dev/null
	@cmake --build build/tsan -j $(JOBS) --target $(notdir $(TSAN_TESTS))
	@set -e; for t in $(TSAN_TESTS); do \
	  echo "== TSan: $$t"; \
	  TSAN_OPTIONS="second_deadlock_stack=1 $$TSAN_OPTIONS" build/tsan/$$t --gtest_brief=1; \
	done

# Compiles the CUDA backend (the `cuda` preset; nvcc on PATH or in /usr/local/cuda/bin): only the
# CUDA kernel library and its test, which runs on a GPU machine
# (build/cuda/tests/kernels/arle_kernels_cuda_tests; it skips without a device). CI runs this when
# nvcc exists.
cuda:
	@cmake --preset cuda >/dev/null
	@cmake --build build/cuda -j $(JOBS) --target arle_kernels_cuda_tests

# Builds the libFuzzer targets (clang); see fuzz/README.md for running them.
fuzz:
	@scripts/install-deps.sh --with-fuzz
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

clean:
	rm -rf build

# Thin front end: deps, build, test, bench. Everything real lives in CMake and tools/.
#   make build            install missing Debian packages, configure and build (Release)
#   make assets           fetch and verify the pinned models and data (tools/fetch-assets)
#   make demo             build, fetch, run OneAdapt on 30 s of real video and 38 s of real
#                         speech, print the tables
#   make test             build and fetch assets, then run every test (ctest)
#   make bench            build, then run the benchmarks (results in build/bench/)
#   make asan             the whole test suite on an AddressSanitizer + UBSan build (build-asan/)
#   make fuzz             libFuzzer on every parser of user files (build-fuzz/, clang; FUZZ_SECONDS each)
#   make headline         the committed comparisons (configs/headline/NAME.toml) into docs/results/
#                         (NAME=video|audio|lidar|spatial|all, default all; also budget-*,
#                         changing-video|audio|lidar: docs/budgets.md)
# Variables: BUILD_DIR (default build), JOBS (default: number of cores),
#            ONEADAPT_SKIP_DEPS=1 skips tools/install-deps.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps assets configure build models demo test bench headline asan fuzz clean

all: build

deps:
ifneq ($(ONEADAPT_SKIP_DEPS),1)
	@tools/install-deps
endif

# Models, data and the TensorFlow.js runtime, pinned and verified, into the cache (never the tree).
assets: deps
	@tools/fetch-assets
	@tools/make-speech-stream
	@tools/changing-content/make-audio-stream

configure: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >$(BUILD_DIR).configure.log 2>&1 \
	  || { cat $(BUILD_DIR).configure.log; exit 1; }

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# What is built from the assets: the LiDAR streams (demo and changing), the point-segmentation network,
# trained here on real scans when absent from the cache (tools/train-pointseg, ~1-2 min), and
# the changing-content video stream (tools/changing-content: camera work and a crowd that leaves
# and returns, on vtest.avi; ~1 min; "-v2": caches may hold the first version, without the crowd).
CACHE = $(shell tools/fetch-assets --print-cache)
models: build assets
	@$(BUILD_DIR)/bin/make-lidar-stream $(CACHE)
	@test -s $(CACHE)/pointseg/pointseg.onnx || $(BUILD_DIR)/bin/train-pointseg $(CACHE)
	@test -s $(CACHE)/video/vtest-changing-v2.mkv || { \
	  $(BUILD_DIR)/bin/make-video-stream $(CACHE)/video/vtest.avi $(CACHE)/video/vtest-changing-v2.tmp.mkv && \
	  mv $(CACHE)/video/vtest-changing-v2.tmp.mkv $(CACHE)/video/vtest-changing-v2.mkv; }

# The main job on the bundled real data: OneAdapt + NanoDet on the first 30 s of vtest.avi,
# then OneAdapt + Silero VAD on the 38 s speech stream and OneAdapt + the point-segmentation
# network on the LiDAR stream (a few seconds each).
demo: build assets models
	$(BUILD_DIR)/bin/oneadapt run --config configs/video-detection.toml --out runs/demo
	$(BUILD_DIR)/bin/oneadapt run --config configs/audio-vad.toml --out runs/demo-audio
	$(BUILD_DIR)/bin/oneadapt run --config configs/lidar-pointseg.toml --out runs/demo-lidar

test: build assets models
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: build assets models
	@mkdir -p $(BUILD_DIR)/bench
	bench/run-engine-bench $(BUILD_DIR)
	bench/run-pipeline-bench $(BUILD_DIR)
	bench/run-pipeline-bench $(BUILD_DIR) 0 configs/audio-vad.toml
	bench/run-pipeline-bench $(BUILD_DIR) 0 configs/lidar-pointseg.toml
	bench/run-split-bench $(BUILD_DIR)
	bench/run-compare-jobs-bench $(BUILD_DIR)
	$(BUILD_DIR)/bin/bench_plugin_host --benchmark_repetitions=5 \
	  --benchmark_report_aggregates_only=true \
	  --benchmark_out=$(BUILD_DIR)/bench/plugin_host.json --benchmark_out_format=json

# The sanitizer run: its own build folder (RelWithDebInfo, -fsanitize=address,undefined, no
# recovery), then every test. Leak checking is off: LibTorch and protobuf keep global state
# to the end. docs/reliability.md records the last run.
ASAN_DIR ?= build-asan
asan: assets
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DONEADAPT_SANITIZE=ON >$(ASAN_DIR).configure.log 2>&1 \
	  || { cat $(ASAN_DIR).configure.log; exit 1; }
	cmake --build $(ASAN_DIR) -j $(JOBS)
	@$(ASAN_DIR)/bin/make-lidar-stream $(CACHE)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# Fuzzing: clang with libFuzzer and ASan (tools/install-deps fuzz installs them), only the
# fuzz_* targets; FUZZ_SECONDS per target (docs/reliability.md records the hours and findings).
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= onnx tfjs config state wire pcd ply las bin rawlog avi mp4 mkv wav recv_video recv_audio
FUZZ_JOBS ?= 1
fuzz: assets
	@tools/install-deps fuzz
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DONEADAPT_FUZZ=ON >$(FUZZ_DIR).configure.log 2>&1 \
	  || { cat $(FUZZ_DIR).configure.log; exit 1; }
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	FUZZ_JOBS=$(FUZZ_JOBS) tools/run-fuzz $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The headline comparisons, regenerated: NAME=video (about 40 min here), audio, lidar, spatial or all.
NAME ?= all
headline: build assets models
	tools/run-headline $(BUILD_DIR) $(NAME)

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log

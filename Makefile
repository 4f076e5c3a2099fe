# lvc: a learned image and video codec.
#   make demo   encode and decode a sample image with the embedded model
#   make test   every test: Go (host, js/wasm, arm64), fuzz seeds, the trainer's model and export checks
GO      ?= go
PYTHON  ?= /usr/bin/python3
WASMEXEC = $(shell $(GO) env GOROOT)/lib/wasm
SAMPLE  ?= testdata/sample.png
OUT     ?= /tmp/lvc-demo

.PHONY: all build demo test test-go test-wasm test-arm64 test-train vet bench bench-docs fuzz train-deps train export rd rd-refine video-rd wasm serve clean

all: build

build:
	$(GO) build -o bin/lvc ./cmd/lvc

demo: build
	@mkdir -p $(OUT)
	./bin/lvc encode $(SAMPLE) -o $(OUT)/sample.lvc -q 4
	./bin/lvc info $(OUT)/sample.lvc
	./bin/lvc decode $(OUT)/sample.lvc -o $(OUT)/sample.png
	./bin/lvc psnr $(SAMPLE) $(OUT)/sample.png
	@echo "decoded image: $(OUT)/sample.png"

test: vet test-go test-wasm test-arm64 test-train

vet:
	$(GO) vet ./...

# wasm's tests build the js/wasm decoder themselves, from files the host
# build leaves out, so Go's test cache would not see them change: -count=1.
test-go:
	$(GO) test $$($(GO) list ./... | grep -v '/wasm$$')
	$(GO) test -count=1 ./wasm/

# The PyTorch side: model extensions start as the identity, options survive a
# checkpoint, exported transforms compute what the model does.
test-train:
	$(PYTHON) -W ignore -m unittest discover -s train -p 'test_*.py'

# The same golden hashes (entropy bytes, fixed-point h_s output, exact
# latents) must hold under js/wasm, where the portable kernels run.
test-wasm:
	PATH="$(WASMEXEC):$$PATH" GOOS=js GOARCH=wasm $(GO) test ./entropy/ ./nn/ ./container/ ./vq/ ./codec/

# The determinism goldens on arm64, where Go contracts x*y+z into FMA: the
# test binaries run under qemu user-mode emulation.
ARM64_TESTS = Deterministic|Winograd|FixedGraphExact|FixedMAC4|LatentsAreExact|InterFramesExact|ShippedModelGoldens|TinyModelGoldens|OpGoldens|CheckerboardLatentsExact|ContextModelGoldens|ContextChunks|DecoderInParts|EncodeParts|FullySkippedFrame|FirstFormInterFrame|SkippedBlocksDecodeExactly|InterGoldens
test-arm64:
	@passed=0; for p in entropy nn codec; do \
	  GOARCH=arm64 $(GO) test -c -o /tmp/lvc-$$p.arm64.test ./$$p || exit 1; \
	  out=$$(cd $$p && qemu-aarch64 /tmp/lvc-$$p.arm64.test -test.run '$(ARM64_TESTS)' -test.v); st=$$?; \
	  echo "$$out" | grep -E '^(--- |FAIL)'; \
	  [ $$st -eq 0 ] || { echo "arm64: $$p failed"; exit 1; }; \
	  passed=$$((passed + $$(echo "$$out" | grep -c '^--- PASS'))); \
	done; echo "arm64: $$passed passed, 0 failed"

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Regenerate the measured sections of docs/BENCHMARKS.md: Go benchmarks,
# and g_s against PyTorch and onnxruntime-node (npm, CPU build) in one run.
bench-docs: build
	$(PYTHON) train/bench_report.py --run $(SHIPPED_RUN)
	$(PYTHON) train/bench_synthesis.py --ckpt $(SHIPPED_RUN)/weights_fp16.pt
	$(PYTHON) train/splice_section.py docs/BENCHMARKS.md synthesis train/rd_out/synthesis_bench.md

# Each fuzz target for FUZZTIME (default 2 minutes).
FUZZTIME ?= 2m
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg || exit 1; \
	  done; \
	done

# Debian's torch runs 1x1 convolutions and their gradients through the system
# BLAS: with the reference libblas3 alone a training step takes 1.8x as long
# (measured, session 22), so OpenBLAS is named here rather than left to
# arrive with scipy.
train-deps:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-onnx python3-numpy python3-pil python3-scipy python3-matplotlib libopenblas0-pthread

# A new run goes in a new directory.
RUN ?= train/runs/next
# The run of the shipped model, whose settings and log the speed section cites.
SHIPPED_RUN ?= train/runs/hp64u22
train:
	$(PYTHON) train/train.py --run $(RUN)

# Kodak RD curves of lvc against JPEG, WebP and AVIF (measured in the same
# run), BD-rates, and the RD section of docs/BENCHMARKS.md regenerated.
rd: build
	$(PYTHON) train/rd.py --lvc ./bin/lvc --jobs 1
	$(PYTHON) train/splice_section.py docs/BENCHMARKS.md rd train/rd_out/rd_section.md

# lvc against x264 and x265 (through ffmpeg) on the clips in shared/data/video,
# low delay, and the video section of docs/BENCHMARKS.md regenerated: about
# 10 minutes on 2 cores.
video-rd: build
	command -v ffmpeg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; }
	$(PYTHON) train/video_rd.py --lvc ./bin/lvc --jobs 2
	$(PYTHON) train/splice_section.py docs/BENCHMARKS.md video train/video_out/video_section.md

# The encoder's slow mode (--refine 40) added to the curves that make rd
# wrote: about 35 minutes on 2 cores.
rd-refine: build
	$(PYTHON) train/rd.py --lvc ./bin/lvc --codecs lvc-refine --merge --jobs 2
	$(PYTHON) train/splice_section.py docs/BENCHMARKS.md rd train/rd_out/rd_section.md

# The browser viewer: wasm/web/index.html with lvc.wasm, Go's wasm_exec.js
# and onnxruntime-web (npm) for the synthesis network.
ORTDIST = wasm/node_modules/onnxruntime-web/dist
wasm:
	GOOS=js GOARCH=wasm $(GO) build -o wasm/web/lvc.wasm ./wasm
	cp "$(WASMEXEC)/wasm_exec.js" wasm/web/
	cd wasm && npm ci --no-audit --no-fund
	mkdir -p wasm/web/ort
	cp $(ORTDIST)/ort.wasm.min.js $(ORTDIST)/ort-wasm-simd-threaded.wasm $(ORTDIST)/ort-wasm-simd-threaded.mjs wasm/web/ort/

# Cross-origin isolated, so that onnxruntime-web runs on every core.
serve: wasm
	$(GO) run ./wasm/serve

clean:
	rm -rf bin wasm/web/lvc.wasm wasm/web/wasm_exec.js wasm/web/ort

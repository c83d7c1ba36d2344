# govmm: the two commands of the README are `make demo` and `make test`.
GO      ?= go
BIN     := bin/govmm
TESTLOG ?= $(or $(TMPDIR),/tmp)/govmm-test.log
SHELL   := /bin/bash

.PHONY: all build images demo test vet bench clean

all: build

# govmm, and govmm-vmm: the small executable 'govmm run' becomes (exec) to
# run the VM, so the process running guest code maps the VMM and nothing
# else. Static (no cgo): no libc is mapped into every VMM process.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/govmm
	CGO_ENABLED=0 $(GO) build -o $(dir $(BIN))govmm-vmm ./cmd/govmm-vmm

# Pinned Debian kernels, the u-root guest initramfs and the nested harness's
# outer-guest initramfs, into ~/.cache/govmm (or $$GOVMM_CACHE). Idempotent.
images: build
	./$(BIN) images

# The main job: boot the default guest and run a command in it, through the
# nested KVM harness when this host has no usable /dev/kvm.
demo: images
	./$(BIN) with-kvm -- $(CURDIR)/$(BIN) run --boot-time --cpus 2 --mem 512M -- \
	  sh -c 'echo; echo "== inside the govmm guest"; uname -a; echo "cpus: $$(grep -c ^processor /proc/cpuinfo)"; grep MemTotal /proc/meminfo'

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi

# Unit tests on the host; tests that need KVM on /dev/kvm, or nested when
# there is none. The second step boots the outer guest even on a KVM host, so
# the nested path is tested everywhere. The full -v log goes to $(TESTLOG);
# the summary shows how each KVM package ran. Packages run one at a time
# (-p 1): each KVM package may boot an outer guest, and two at once on a
# two-core machine only slow each other down.
test: images vet
	@echo "== go test ./... (full log: $(TESTLOG))"
	@set -o pipefail; $(GO) test -count=1 -p 1 -timeout 45m -v ./... 2>&1 | tee $(TESTLOG) \
	  | grep --line-buffered -E '^(ok|FAIL|--- FAIL|panic:|govmm harness:|\?)' \
	  || { echo "== failures:"; grep -B 5 -A 30 -E -- '^(--- FAIL|panic:)' $(TESTLOG) | head -300; \
	       grep -A 50 -E -- '^govmm harness: nested KVM harness' $(TESTLOG) | head -200; \
	       grep -B 1 -E -- '^[^ ]+\.go:[0-9]+:[0-9]+: ' $(TESTLOG) | head -50; exit 1; }
	@echo "== nested KVM smoke test (forced through the outer guest)"
	GOVMM_HARNESS=nested $(GO) test -count=1 -v -run 'TestSmoke' ./kvm/

# Go micro-benchmarks of the hot device paths, then govmm bench: boot, disk
# and network against QEMU's microvm, and VM versus container, in the same
# place (nested when this host has no usable KVM); tables on stderr, JSON in
# bench.json, the VM-versus-container chart in bench.svg.
BENCH_ROUNDS ?= 5
bench: images
	$(GO) test -run '^$$' -bench . -benchmem ./devices/... ./bench/...
	./$(BIN) with-kvm --timeout 60m -- $(CURDIR)/$(BIN) bench --rounds $(BENCH_ROUNDS) --json bench.json --chart bench.svg
	@echo "bench: JSON report in bench.json, chart in bench.svg"

clean:
	rm -rf bin

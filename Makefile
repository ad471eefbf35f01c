# isoedge — see README.md.
GO      ?= go
BIN     ?= bin/isoedge
DATA    ?= $(CURDIR)/data
PORT    ?= 8080
# Packages with concurrency run under the race detector.
RACE_PKGS = ./cache/ ./catalog/ ./upstream/ ./proxy/

.PHONY: all build run test test-race vet fmt bench fuzz image e2e abuse clean

all: build

# Stamped into the binary (internal/version); empty outside a git checkout,
# then the binary falls back to what the Go toolchain recorded.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
VERSION_PKG = github.com/isoedge/isoedge/internal/version
LDFLAGS  = -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).revision=$(REVISION)

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

# Standalone sample: no assisted-service, no internet. Builds a small sample
# live ISO into $(DATA) on first start and serves ignition from $(DATA)/ignition.
run: build
	mkdir -p $(DATA)/tmp
	DATA_DIR=$(DATA) DATA_TEMP_DIR=$(DATA)/tmp LISTEN_PORT=$(PORT) ./$(BIN)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 -shuffle=on ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

# Boots full.iso (BIOS, UEFI), minimal.iso (BIOS, UEFI) and kernel + pxe-initrd
# in qemu (TCG) and checks what the guest received; see e2e/README.md.
e2e:
	$(GO) test -tags e2e -count=1 -timeout 20m -v ./e2e/

# The attacker's suite (abuse/, build tag "abuse"): the binary (ISOEDGE_BIN,
# else built from this tree) against hostile mirrors and a hostile
# assisted-service, then the 20,000-InfraEnv scale benchmark once. Both run
# even if the first fails.
abuse:
	@status=0; \
	$(GO) test -tags abuse -count=1 -timeout 30m -parallel 4 -v ./abuse/ || status=1; \
	$(GO) test -tags abuse -count=1 -timeout 30m -v -run '^$$' -bench '^BenchmarkScaleInfraEnvs$$' -benchtime=1x ./abuse/ || status=1; \
	exit $$status

# Server CPU per GB against a plain sendfile server, same run.
bench:
	$(GO) run ./internal/bench

# Each fuzz target for a short while (FUZZTIME=20s by default). Targets
# whose inputs are whole ISOs minimize new inputs for 2 s at most: the
# default (60 s) would spend the run minimizing one input.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRange$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzJWT$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzParseOSImages$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzAssistedServiceHost$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzBaseURLAcceptedByTemplateBuild$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzPlanSlice$$' -fuzztime $(FUZZTIME) ./customize/
	$(GO) test -run '^$$' -fuzz '^FuzzParseLayout$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./customize/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDigest$$' -fuzztime $(FUZZTIME) ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzOpenIndex$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzKernelArguments$$' -fuzztime $(FUZZTIME) ./upstream/
	$(GO) test -run '^$$' -fuzz '^FuzzNewcReader$$' -fuzztime $(FUZZTIME) ./customize/newc/
	$(GO) test -run '^$$' -fuzz '^FuzzCheckKernelArgument$$' -fuzztime $(FUZZTIME) ./customize/
	$(GO) test -run '^$$' -fuzz '^FuzzHybridArea$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./customize/

IMAGE          ?= quay.io/isoedge/isoedge:latest
CONTAINER_TOOL ?= $(shell command -v podman 2>/dev/null || command -v buildah 2>/dev/null)

# Container image (Containerfile); needs podman or buildah.
image:
	@if [ -z "$(CONTAINER_TOOL)" ]; then \
	  echo "make image: needs podman or buildah in PATH (or set CONTAINER_TOOL=docker)"; exit 1; fi
	$(CONTAINER_TOOL) build -f Containerfile --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

clean:
	rm -rf bin

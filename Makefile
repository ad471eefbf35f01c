# isoedge — see README.md.
GO      ?= go
BIN     ?= bin/isoedge
DATA    ?= $(CURDIR)/data
PORT    ?= 8080
# Packages with concurrency run under the race detector.
RACE_PKGS = ./cache/ ./upstream/ ./proxy/

.PHONY: all build run test test-race vet fmt bench fuzz image e2e abuse clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) .

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
	$(GO) test -count=1 ./...
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

# Each fuzz target for a short while (FUZZTIME=20s by default).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRange$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzJWT$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzParseOSImages$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzPlanSlice$$' -fuzztime $(FUZZTIME) ./customize/
	$(GO) test -run '^$$' -fuzz '^FuzzParseLayout$$' -fuzztime $(FUZZTIME) ./customize/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDigest$$' -fuzztime $(FUZZTIME) ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzKernelArguments$$' -fuzztime $(FUZZTIME) ./upstream/

IMAGE          ?= quay.io/isoedge/isoedge:latest
CONTAINER_TOOL ?= $(shell command -v podman 2>/dev/null || command -v buildah 2>/dev/null)

# Container image (Containerfile); needs podman or buildah.
image:
	@if [ -z "$(CONTAINER_TOOL)" ]; then \
	  echo "make image: needs podman or buildah in PATH (or set CONTAINER_TOOL=docker)"; exit 1; fi
	$(CONTAINER_TOOL) build -f Containerfile -t $(IMAGE) .

clean:
	rm -rf bin

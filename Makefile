# Only the module proxy: a missing module fails at once instead of reaching
# for a source host.
GOPROXY := $(shell go env GOPROXY | cut -d, -f1)
export GOPROXY
GOBIN ?= $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build run test test-deps lint bench bench-metadata bench-storm bench-catalog clean

all: build

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry

# Runs the registry on its embedded defaults: ./ferry-data, TLS with a
# generated CA, port 8443.
run: build
	./bin/ferry serve

test-deps:
	bash scripts/install-test-deps.sh

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

# The whole suite: real registries and real clients, installed first.
test: test-deps lint
	go test -race -timeout 30m ./...

# Ferry against its peers on this machine, in one run each: the registry
# against CNCF distribution v3 and nginx, the mirroring against skopeo sync,
# the metadata store at scale, an upgrade's pull storm and a Red Hat-size
# catalog filter (sizes: see bench/metadata.sh, storm.sh and catalog.sh).
bench: build test-deps
	FERRY_BIN=$(CURDIR)/bin/ferry bash bench/registry.sh
	sh bench/mirror.sh
	bash bench/metadata.sh
	bash bench/storm.sh
	bash bench/catalog.sh

bench-metadata: test-deps
	bash bench/metadata.sh

bench-storm: test-deps
	bash bench/storm.sh

bench-catalog:
	bash bench/catalog.sh

clean:
	rm -rf bin

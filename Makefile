# Only the module proxy: a missing module fails at once instead of reaching
# for a source host.
GOPROXY := $(shell go env GOPROXY | cut -d, -f1)
export GOPROXY
GOBIN ?= $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

PREFIX ?= /usr/local

.PHONY: all build install run test test-deps lint fuzz bench bench-metadata bench-storm bench-catalog clean image

all: build

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry
	ln -sf ferry bin/oc-mirror

# ferry, and oc-mirror: the same binary, which takes oc-mirror v2's command
# line when started under that name.
install: build
	install -D -m 0755 bin/ferry $(DESTDIR)$(PREFIX)/bin/ferry
	ln -sf ferry $(DESTDIR)$(PREFIX)/bin/oc-mirror

# The container image, offline and reproducible: a static binary (no build
# id, trimmed paths) on an empty base, every timestamp the last commit's, so
# the same tree gives the same digest. Writes an OCI layout to IMAGE_LAYOUT;
# IMAGE_PUSH=reg.example/ferry:v1[,...] also pushes it (credentials from
# ~/.docker/config.json or podman login), IMAGE_INSECURE=1 over plain HTTP.
IMAGE_LAYOUT ?= bin/image
IMAGE_TAG ?= ferry:$(VERSION)
IMAGE_PUSH ?=
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
image:
	CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags '$(LDFLAGS) -buildid=' -o bin/ferry-linux-$(shell go env GOARCH) ./cmd/ferry
	go run ./hack/image --binary bin/ferry-linux-$(shell go env GOARCH) --layout $(IMAGE_LAYOUT) --tag $(IMAGE_TAG) \
		--version $(VERSION) --arch $(shell go env GOARCH) $(if $(IMAGE_PUSH),--push $(IMAGE_PUSH)) $(if $(IMAGE_INSECURE),--insecure)

# Runs the registry on its embedded defaults: ./ferry-data, TLS with a
# generated CA, port 8443.
run: build
	./bin/ferry serve

test-deps:
	bash scripts/install-test-deps.sh

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

# The whole suite: real registries and real clients, installed first;
# the memory limits without the race detector; then every fuzz target for
# a bounded time.
test: test-deps lint
	go test -race -timeout 30m ./...
	# Peak-RSS limits, which the race detector's memory would void.
	go test -count=1 -p 1 -run '^(TestFilterMemory|TestOversizedCatalog)$$' ./internal/catalog ./test/catalog
	$(MAKE) fuzz

# Every Go fuzz target for FUZZTIME each (about a minute in all at 2s);
# `make fuzz FUZZTIME=5m` searches longer.
FUZZTIME ?= 2s
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

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

# Build and test steps. The Dockerfile runs the same build.
GO      ?= go
BINARY  ?= bin/ctigate
LDFLAGS ?= -s -w

.PHONY: all build test vet fmt-check fuzz bench run clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/ctigate

# The test command (README.md, .ci/run): formatting, vet, every test with
# the race detector.
test: fmt-check vet
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 ./policy -run 'TestNoLeak$$' -rapid.checks=2000
	$(GO) test -count=1 ./fanout -run 'TestNoLeakOrganisations$$' -rapid.checks=200

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEnvelope -fuzztime=60s ./stix
	$(GO) test -run='^$$' -fuzz=FuzzValidateObject -fuzztime=60s ./stix
	$(GO) test -run='^$$' -fuzz=FuzzCanonical -fuzztime=60s ./stix
	$(GO) test -run='^$$' -fuzz=FuzzResolve -fuzztime=60s ./stix
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=60s ./stix/pattern
	$(GO) test -run='^$$' -fuzz=FuzzParseQuery -fuzztime=30s ./server
	$(GO) test -run='^$$' -fuzz=FuzzEvaluate -fuzztime=60s ./policy

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./stix ./stix/pattern ./store/bolt

run:
	$(GO) run ./cmd/ctigate serve

clean:
	rm -rf bin

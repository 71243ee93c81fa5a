# Build and test steps. The Dockerfile runs the same build.
GO      ?= go
BINARY  ?= bin/ctigate
LDFLAGS ?= -s -w

.PHONY: all build test vet staticcheck fmt-check fuzz soak bench run clean

# go test's own limit; a full run takes about five minutes on two quiet
# cores, so this stays far from it on a busy machine.
TEST_TIMEOUT ?= 30m
FUZZTIME     ?= 30s

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/ctigate

# The test command (README.md, .ci/run): formatting, vet, staticcheck,
# every test with the race detector.
test: fmt-check vet staticcheck
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 ./policy -run 'TestNoLeak$$' -rapid.checks=2000
	$(GO) test -count=1 ./fanout -run 'TestNoLeakOrganisations$$' -rapid.checks=200
	$(GO) test -count=1 ./server -run 'TestLoginFloodKeepsUserIn$$' -v

vet:
	$(GO) vet ./...

# staticcheck is a tool dependency pinned in go.mod.
staticcheck:
	$(GO) tool staticcheck ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every fuzz target of every package, FUZZTIME each (a new one is found
# by its name, so none is forgotten).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

SOAK ?= 10m

# Long runs, apart from `make test`: the custody ledger under 8 producers
# and 8 consumers for ten minutes, an evidence package in a ledger of a
# million entries, the gateway under mixed load, floods, restarts and
# SIGKILL for $(SOAK) on bbolt and on Redis (AOF, killed too), 150
# connections asking for the largest pages and never reading them, and
# the no-leak properties broadly.
soak:
	$(GO) test -count=1 -timeout 60m ./cmd/ctigate -run 'TestCustodyUnderLoad$$' -custody.duration=10m -v
	$(GO) test -count=1 -timeout 60m ./cmd/ctigate -run 'TestEvidenceLargeLedger$$' -evidence.entries=1000000 -v
	$(GO) test -count=1 -timeout 60m ./cmd/ctigate -run 'TestSoak$$' -soak.duration=$(SOAK) -soak.store=bolt -v
	$(GO) test -count=1 -timeout 60m ./cmd/ctigate -run 'TestSoak$$' -soak.duration=$(SOAK) -soak.store=redis -v
	$(GO) test -count=1 -timeout 10m ./server -run 'TestBigPagesBounded$$' -bigpages.full -v
	$(GO) test -count=1 ./policy -run 'TestNoLeak$$' -rapid.checks=20000
	$(GO) test -count=1 -timeout 60m ./fanout -run 'TestNoLeakHTTP$$|TestNoLeakOrganisations$$|TestDryRunAgreesWithFanOut$$' -rapid.checks=2000

# The figures of docs/performance.md, each from its own command (several
# minutes; run it on a quiet machine). BENCH10M=1 adds the 10-million-version
# run and its 10,000-version baseline, each read cold (page cache dropped,
# as root) and warm (about 20 minutes and 20 GB in /var/tmp).
# BENCH_REDIS=redis://127.0.0.1:6391/0 adds the Redis run (a Redis of its
# own: its memory and CPU are attributed to the objects).
# BENCH_AGAINST=/path/to/an/earlier/ctigate adds paired runs of this build
# against it (five rounds; on Redis too with BENCH_REDIS).
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./stix ./stix/pattern ./store/bolt ./policy
	$(GO) test -run='^$$' -bench='Propagation' -benchtime 200x ./server
	$(GO) test -run='^$$' -bench='IngestTelemetryPaired' -benchtime 300x ./server
	$(GO) test -run='^$$' -bench='Lookup1M' -benchtime 20000x -timeout 30m ./search
	$(GO) test -run='^$$' -bench='EntriesRoutes' ./search
	$(GO) test -run='^$$' -bench='Release' -benchtime 3x ./fanout
	$(GO) test -run='^$$' -bench='WithdrawalBurst' -benchtime 1x ./cmd/ctigate
	$(BINARY) bench -n 200000
	$(BINARY) bench --phase push --no-ceiling -n 60000 -b 10 -p 16
	$(BINARY) bench --phase push --no-ceiling -n 100000 -b 100 -p 2
	if [ -n "$(BENCH_REDIS)" ]; then $(BINARY) bench -n 200000 --redis $(BENCH_REDIS) && \
	  $(BINARY) bench -n 100000 --routeless --no-ceiling --redis $(BENCH_REDIS) && \
	  $(BINARY) bench -n 60000 -b 10 -p 16 --no-ceiling --redis $(BENCH_REDIS); fi
	if [ -n "$(BENCH_AGAINST)" ]; then $(BINARY) bench -n 200000 --against $(BENCH_AGAINST) && \
	  $(BINARY) bench --phase push -n 60000 -b 10 -p 16 --against $(BENCH_AGAINST); fi
	if [ -n "$(BENCH_AGAINST)" ] && [ -n "$(BENCH_REDIS)" ]; then $(BINARY) bench -n 200000 --redis $(BENCH_REDIS) --against $(BENCH_AGAINST); fi
	if [ -n "$(BENCH10M)" ]; then \
	  for n in 10000 10000000; do rm -rf /var/tmp/ctigate-b$$n && \
	    $(BINARY) bench --phase push --routeless --no-ceiling -n $$n --data /var/tmp/ctigate-b$$n && \
	    for state in cold warm; do \
	      if [ $$state = cold ]; then sync; (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null || echo "cannot drop the page cache (not root): the cold run is warm"; fi; \
	      echo "$$n versions, $$state:"; \
	      $(BINARY) bench --phase poll --routeless --no-ceiling -c 1 --data /var/tmp/ctigate-b$$n || exit 1; \
	    done; \
	  done && \
	  $(GO) test -run='^$$' -bench='Lookup10M' -benchtime 20000x -timeout 60m ./search; fi

run:
	$(GO) run ./cmd/ctigate serve

clean:
	rm -rf bin

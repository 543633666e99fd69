# mailrun — every target a newcomer or CI needs. `make test` is what CI runs.
GO        ?= go
BIN       ?= bin/mailrun
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(GOBIN)/staticcheck
FUZZTIME  ?= 30s
BENCH_N   ?= 100000
BENCH_SEND_N ?= 20000

.PHONY: build test check fmt fuzz bench bench-cluster demo clean screenshots

build:
	$(GO) build -o $(BIN) ./cmd/mailrun

# demo previews the bundled newsletter into out/: no server needed.
demo: build
	rm -rf out/newsletter
	./$(BIN) check examples/newsletter
	./$(BIN) preview examples/newsletter -o out/newsletter
	@ls out/newsletter

# staticcheck is installed on first use, so make test works on a fresh machine.
$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

check: $(STATICCHECK)
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

test: check
	$(GO) test -race -shuffle=on -timeout 12m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# fuzz runs every fuzz target for FUZZTIME each (go test allows one target per run).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# bench prints the micro-benchmarks, then runs the built mailrun on generated
# recipients: preview of BENCH_N and send of BENCH_SEND_N through a loopback
# SMTP server, reporting messages per second and the peak memory of mailrun.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./render/ ./sender/ ./journal/
	MAILRUN_BENCH=1 MAILRUN_BIN=$(CURDIR)/$(BIN) BENCH_N=$(BENCH_N) BENCH_SEND_N=$(BENCH_SEND_N) \
	  $(GO) test -run '^TestBench' -v -timeout 30m ./cmd/mailrun/

# bench-cluster sends BENCH_CLUSTER_N (20000) recipients with a plain send (8
# connections), then the same campaign through a hub and two workers (4
# connections each) on this machine, and reports both rates, the hub's
# writes per second, the claim round trip and each process's CPU and memory.
# Knobs: BENCH_CLUSTER_WORKERS (2), BENCH_CLUSTER_CONCURRENCY (4 per worker),
# BENCH_CLUSTER_PLAIN_CONCURRENCY (workers x concurrency), BENCH_SINK_DELAY
# (say 20ms before each message's final reply, a real relay's latency),
# BENCH_CLUSTER_STORE (the hub's store folder, say /dev/shm) and
# BENCH_CLUSTER_R3=1 (three clustered NATS servers in the test process, R3,
# instead of the hub; =sync has them sync every write, as the hub does).
bench-cluster: build
	MAILRUN_BENCH=1 MAILRUN_BIN=$(CURDIR)/$(BIN) BENCH_CLUSTER_N=$(or $(BENCH_CLUSTER_N),20000) \
	  $(GO) test -run '^TestBenchCluster$$' -v -count=1 -timeout 30m ./cmd/mailrun/

# screenshots writes the README's pictures of the preview gallery into docs/
# (the newsletter at 1280 and 390 px) with headless Chromium; look at them
# before committing.
screenshots:
	MAILRUN_SCREENSHOTS=$(CURDIR)/docs $(GO) test -run '^TestScreenshots$$' -count=1 -v ./mailing/

clean:
	rm -rf bin out

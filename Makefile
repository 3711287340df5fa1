# LambdaPlatform — `make run` brings the pipeline up on embedded defaults, `make test` runs every test.
# Everything the project needs is installed here the first time; downloads are cached outside the clone.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/lambdaplatform
CHDB_VERSION := 26.5.3
CHDB_LIB := $(CACHE)/chdb/$(CHDB_VERSION)/libchdb.so
CONFIGURATION ?= Release
DOTNET ?= dotnet
export LAMBDA_CHDB_LIBRARY := $(CHDB_LIB)
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

TEST_PROJECTS := $(sort $(wildcard tests/*/*.Tests.csproj))

.PHONY: all deps chdb clickhouse-server postgresql prometheus chromium build test run bench profile chaos soak clean

all: build

## deps: everything the tests and the embedded run need (chDB library, clickhouse-server, promtool, chromium, NuGet packages).
## The operations page's chart library comes from npm at build time (serving-layer/LambdaPlatform.Serving/Ops/web/package-lock.json).
deps: chdb clickhouse-server postgresql prometheus chromium
	$(DOTNET) restore LambdaPlatform.sln --verbosity quiet

## chdb: libchdb.so (ClickHouse as an in-process library) from its npm package, cached under $(CACHE).
chdb: $(CHDB_LIB)

$(CHDB_LIB):
	@echo "fetching chDB $(CHDB_VERSION) (about 170 MB, once) into $(CACHE)/chdb"
	@rm -rf $(CACHE)/chdb/tmp && mkdir -p $(CACHE)/chdb/tmp $(dir $@)
	@cd $(CACHE)/chdb/tmp && npm pack --silent @chdb/lib-linux-x64-gnu@$(CHDB_VERSION) >/dev/null \
	  && tar xzf chdb-lib-linux-x64-gnu-$(CHDB_VERSION).tgz package/libchdb.so \
	  && mv package/libchdb.so $@.partial && mv $@.partial $@
	@rm -rf $(CACHE)/chdb/tmp

## clickhouse-server: Debian's clickhouse-server (18.16), the oldest server the platform supports; tests start their own process.
clickhouse-server:
	@command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || { \
	  echo "installing Debian's clickhouse-server"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y --no-install-recommends clickhouse-server >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y --no-install-recommends clickhouse-server >/dev/null)); \
	  service clickhouse-server stop >/dev/null 2>&1 || true; }

## postgresql: Debian's PostgreSQL server binaries; the jobs tests start their own server in a temporary folder.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y --no-install-recommends postgresql >/dev/null)); \
	  service postgresql stop >/dev/null 2>&1 || true; }

## prometheus: Debian's prometheus package for promtool, which checks and unit-tests the shipped alert rules
## (ops/prometheus); the server it installs is not started.
prometheus:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus (promtool)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y --no-install-recommends prometheus >/dev/null)); \
	  service prometheus stop >/dev/null 2>&1 || true; }

## chromium: Debian's chromium, which the browser tests of the operations page drive headless through Microsoft.Playwright
## (started by path, /usr/bin/chromium; Playwright's own browser downloads are never used).
chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "installing Debian's chromium"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null)); }

build: deps
	$(DOTNET) build LambdaPlatform.sln -c $(CONFIGURATION) --no-restore --verbosity quiet -nologo

## test: every test project against real components; ends with one "N passed, N failed" line.
test: build
	@bash scripts/test.sh $(CONFIGURATION) $(TEST_PROJECTS)

## run: the thin slice on embedded defaults (dev broker + chDB + demo traffic); Ctrl-C stops it.
run: build
	./lambda up --demo

## bench: benchmarks; prints a table and writes artifacts/bench.json (~15-25 min on 2 cores; the first run also
## generates a 4-day, 40M-event master dataset under $(CACHE)/bench). Sizes: LAMBDA_BENCH_REPEATS (3),
## LAMBDA_BENCH_KAFKA_EVENTS (400000), LAMBDA_BENCH_KAFKA_PARTITIONS (8), LAMBDA_BENCH_BATCH_EVENTS (10000000 per day),
## LAMBDA_BENCH_BATCH_DAYS (4), LAMBDA_BENCH_API_REQUESTS (2000), LAMBDA_BENCH_API_CLIENTS (1,16,64),
## LAMBDA_BENCH_FRESHNESS_SECONDS (20); LAMBDA_BENCH_E2E_ONLY=1 skips the one-core BenchmarkDotNet figures and
## LAMBDA_BENCH_ONLY=api,speed,peer,archive,freshness,batch,scaling runs only those parts.
bench: deps
	$(DOTNET) run -c Release --project bench/LambdaPlatform.Benchmarks -- artifacts/bench.json

## profile (not in CI): the speed layer's end-to-end runs of the bench (PROFILE_PARTS, default speed) under dotnet-trace's
## sampling profiler (installed once under $(CACHE)/tools); writes artifacts/profile.speedscope.json, which speedscope
## or PerfView opens. Per-thread stacks; native code (librdkafka, chDB) shows as UNMANAGED_CODE_TIME.
DOTNET_TRACE_VERSION := 10.0.750501
DOTNET_TRACE := $(CACHE)/tools/dotnet-trace
PROFILE_PARTS ?= speed
$(DOTNET_TRACE):
	$(DOTNET) tool install dotnet-trace --version $(DOTNET_TRACE_VERSION) --tool-path $(CACHE)/tools

profile: deps build $(DOTNET_TRACE)
	mkdir -p artifacts
	LAMBDA_BENCH_ONLY=$(PROFILE_PARTS) LAMBDA_BENCH_E2E_ONLY=1 $(DOTNET_TRACE) collect --format speedscope -o artifacts/profile.nettrace \
		-- bench/LambdaPlatform.Benchmarks/bin/$(CONFIGURATION)/net10.0/LambdaPlatform.Benchmarks artifacts/profile-bench.json

## chaos: the whole chaos suite — faults injected into real components, 1,000,000 events through kill -9s on work in
## flight; every cell of the merged views and every master-dataset row checked; prints a table and writes
## artifacts/chaos.json (SEED=n repeats a run, ONLY=text runs the faults whose name contains it). `make test` runs the
## same suite at CI size.
chaos: build
	$(DOTNET) run --no-build -c $(CONFIGURATION) --project chaos/LambdaPlatform.Chaos -- $(if $(SEED),--seed $(SEED)) $(if $(ONLY),--only "$(ONLY)") artifacts/chaos.json

## soak (not in CI): SOAK_RATE events/s (default 20,000) for SOAK_MINUTES (default 30) through the whole platform;
## checks speed and archiver memory flat, freshness p99 within SOAK_FRESHNESS seconds (default 5) in every minute,
## end state exact; writes artifacts/soak.json. `SOAK_MINUTES=2 make soak` is a quick check that it works.
SOAK_MINUTES ?= 30
SOAK_RATE ?= 20000
SOAK_FRESHNESS ?= 5
soak: build
	$(DOTNET) run --no-build -c $(CONFIGURATION) --project chaos/LambdaPlatform.Chaos -- soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE) --freshness-p99 $(SOAK_FRESHNESS) $(if $(SEED),--seed $(SEED)) artifacts/soak.json

clean:
	$(DOTNET) clean LambdaPlatform.sln --verbosity quiet
	rm -rf artifacts .lambda

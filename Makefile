# Download licensing service. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
# Runs a command with DynamoDB Local started for it (and stopped after it);
# the jar is fetched once into .cache/ (git-ignored).
WITH_DDB := $(GO) run ./infra/dev/cmd/withdynamodb --

# Lambda builds: one stripped arm64 bootstrap per function. `sam build` calls
# build-<LogicalId> with ARTIFACTS_DIR set; `make build` builds all into bin/.
# No RPC mode in aws-lambda-go and no HTTP/2 in net/http (DynamoDB and SSM
# speak HTTP/1.1): what a Lambda never uses. Size is not traded for CPU:
# the compiler inlines as usual (`make bench` reports each bootstrap's size
# against Lambda's limit).
LAMBDA_ARCH := arm64
LAMBDA_TAGS := lambda.norpc,nethttpomithttp2
LAMBDA_BUILD := GOOS=linux GOARCH=$(LAMBDA_ARCH) CGO_ENABLED=0 $(GO) build -tags $(LAMBDA_TAGS) -trimpath -ldflags="-s -w"
ARTIFACTS_DIR ?= bin

.PHONY: help FORCE test unit lint fmt vet cfn-lint bench bench-domain bench-dynamo load dynamodb-local invoke sam-env pseudonym run run-dynamodb run-regions region-drill job token fuzz rebuild redrive withdraw clean build build-ApiFunction build-StreamsFunction build-JobsFunction

.DEFAULT_GOAL := help

## help: this list (a bare `make` shows it; it runs nothing)
help:
	@echo "dlicense: download licensing and viewing data. The two commands:"
	@echo "  make run     the API on http://127.0.0.1:3000, embedded store (no AWS, no Java)"
	@echo "  make test    everything CI runs (about 4 minutes with warm Go caches, 14 cold; starts DynamoDB Local itself)"
	@echo
	@echo "Every target:"
	@awk '/^## [a-z][a-zA-Z-]*: / { sub(/^## /, ""); i = index($$0, ": "); printf "  %-16s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2); next } \
	      /^## / { sub(/^## /, ""); printf "  %-16s %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))

## test: everything, including the DynamoDB Local integration tests
# One package at a time: they share a DynamoDB Local, whose single database
# serialises writes. The packages with shared state (the state cache and the
# withdrawals, the embedded store, the local server, the handler, the stream
# poller, the regions' emulation, the local job engine) run under the race
# detector.
# The stream and fault suites, the heaviest, each get a fresh DynamoDB Local:
# it slows down as its tables and streams fill.
RACE_PKGS := ./domain/licensing/... ./infra/memstore/... ./infra/dev/local/... ./infra/httpapi/... ./infra/dev/regions/... ./infra/jobs/...
test: lint
	$(WITH_DDB) $(GO) test -count=1 -p 1 -timeout 15m $$($(GO) list ./... | grep -v -e /domain/licensing -e /infra/projector -e /infra/dev/faults -e /infra/memstore -e /infra/dev/local -e /infra/httpapi -e /infra/dev/regions -e /infra/jobs)
	$(WITH_DDB) $(GO) test -race -count=1 -p 1 -timeout 10m $(RACE_PKGS)
	$(WITH_DDB) $(GO) test -race -count=1 -timeout 10m ./infra/projector/...
	$(WITH_DDB) $(GO) test -count=1 -timeout 10m ./infra/dev/faults/...

## unit: the tests that need no DynamoDB (they skip its parts)
unit:
	$(GO) test -count=1 ./...

## lint: formatting, vet and the SAM template
lint: fmt vet cfn-lint

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	@echo "vet: compiling and checking every package (the first run on a machine builds the AWS SDK too: a few minutes)"
	$(GO) vet ./...

cfn-lint:
	cfn-lint template.yaml

## bench: every figure in one report, written to docs/benchmarks.md (a tracked
## file it rewrites: commit it, or git checkout it): the
## domain and DynamoDB Local benchmarks (licensing and viewing), the load
## generator on DynamoDB Local, the store outage drill, bootstrap sizes,
## handler initialisation (about 3 minutes)
bench:
	$(GO) run ./infra/dev/cmd/dlicense-benchreport -write docs/benchmarks.md

bench-domain:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./domain/...

# Each on a DynamoDB Local of its own: a long-running one slows down as it
# fills, which would weigh on the next run's figures.
bench-dynamo:
	$(WITH_DDB) $(GO) test -run '^$$' -bench '^BenchmarkAcquire$$' -benchtime 300x ./infra/dynamo/
	$(WITH_DDB) $(GO) test -run '^$$' -bench '^BenchmarkStreamFunction$$' -benchtime 3x ./infra/projector/
	$(WITH_DDB) $(GO) test -run '^$$' -bench '^BenchmarkRealisticLoad$$' -benchtime 10x ./infra/projector/
	$(WITH_DDB) $(GO) test -run '^$$' -bench '^BenchmarkRouting$$' -benchtime 5x ./infra/projector/
	$(WITH_DDB) $(GO) test -run '^$$' -bench '^BenchmarkViewing$$' -benchtime 3x ./infra/projector/

## load: the load generator against the API of a running `make run` (start
## it first, in another terminal); LOAD_ARGS=… changes the load
LOAD_ARGS ?= -members 50 -concurrency 8 -requests 2000 -duration 60s
load:
	$(GO) run ./infra/dev/cmd/dlicense-load -url http://127.0.0.1:3000 $(LOAD_ARGS)

## rebuild: rebuild snapshots from the logs (MEMBER=… or ALL=1), or recount
## every counter (COUNTERS=1, stream function paused); with VIEWING=1, the
## recently watched rows from the history entries (MEMBER=… or ALL=1);
## ENGAGEMENT=1 recounts every engagement count too (stream function
## paused); HOLDERS=1 records the title holders index from the logs
## (MEMBER=… or ALL=1); VIEWING=1 and ENGAGEMENT=1 want the stream
## function paused too; TABLE_NAME, AWS_REGION set
rebuild:
	$(GO) run ./infra/ops/cmd/dlicense-rebuild $(if $(ENGAGEMENT),-engagement,$(if $(VIEWING),-viewing )$(if $(HOLDERS),-holders )$(if $(COUNTERS),-counters,$(if $(ALL),-all,$(if $(MEMBER),-member $(MEMBER)))))

## withdraw: end the licences of a withdrawn title (TITLE=…) or of every
## withdrawn title of a studio (STUDIO=…) across its holders, with progress,
## resuming where a run stopped; TABLE_NAME, AWS_REGION set, or
## DYNAMODB_ENDPOINT for DynamoDB Local
withdraw:
	$(GO) run ./infra/ops/cmd/dlicense-withdraw $(if $(STUDIO),-studio $(STUDIO),-title $(TITLE))

## job: a fleet-wide job over every member of the table, a parallel-scan
## segment at a time (KIND=whatif POLICY=file.json, or KIND=recount,
## counters, snapshots, holders, viewing-rows or engagement; SEGMENTS=32
## WORKERS=4); with make run-dynamodb running, DYNAMODB_ENDPOINT
## and TABLE_NAME=licensing-local point it at DynamoDB Local
job:
	$(GO) run ./infra/ops/cmd/dlicense-job -kind $(KIND) $(if $(POLICY),-policy $(POLICY)) -segments $(or $(SEGMENTS),32) -workers $(or $(WORKERS),4)

## redrive: replay the records of dead-letter messages through the stream
## function (FILE=message.json, or QUEUE=url for the whole queue); TABLE_NAME
## and AWS_REGION set, or DYNAMODB_ENDPOINT for DynamoDB Local
redrive:
	$(GO) run ./infra/ops/cmd/dlicense-redrive $(if $(QUEUE),-queue $(QUEUE),-file $(FILE))

## fuzz: search for crashers in request handling, policy loading and event
## upcasting (FUZZTIME each, default 1m); `make test` runs their seed corpora
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./infra/httpapi/
	$(GO) test -run '^$$' -fuzz '^FuzzParsePolicy$$' -fuzztime $(FUZZTIME) ./domain/licensing/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZTIME) ./domain/licensing/

# The local server and the DynamoDB Local harness are built, then run
# directly (not through `go run`), so that Ctrl-C reaches them alone, they
# shut down cleanly and make reports no error.
TOOLS := .cache/bin
LOCAL := $(TOOLS)/dlicense-local

## dynamodb-local: run DynamoDB Local in the foreground and print its endpoint
## and pid; DATA=dir keeps its tables on disk and PORT=n fixes its port, so
## that it can be killed and started again on its data (docs/reliability.md)
dynamodb-local: $(TOOLS)/withdynamodb
	@exec $(TOOLS)/withdynamodb -serve $(if $(DATA),-data $(DATA)) $(if $(PORT),-port $(PORT))
PLAN ?= premium
SCOPE ?=

$(TOOLS)/%: FORCE
	@$(GO) build -o $@ ./infra/dev/cmd/$*

## run: the API on 127.0.0.1:3000 with the embedded store (no AWS, no Java)
run: $(LOCAL)
	@exec $(LOCAL) serve -store memory

## run-dynamodb: the same API against DynamoDB Local (table from template.yaml);
## STREAM_OUTAGE=30s makes the stream function fail that long after the start,
## so batches go to the dead letters in .cache/dead-letters (see make redrive)
run-dynamodb: $(LOCAL) $(TOOLS)/withdynamodb
	@exec $(TOOLS)/withdynamodb -- $(LOCAL) serve -store dynamo $(if $(STREAM_OUTAGE),-stream-outage $(STREAM_OUTAGE))

## run-regions: the service in three regions (docs/regions.md) on ports
## 3001-3003 over DynamoDB Local; POST 127.0.0.1:3009/cut/region-b (and
## /heal/region-b) cuts a region off and joins it again
run-regions: $(TOOLS)/dlicense-regions $(TOOLS)/withdynamodb
	@exec $(TOOLS)/withdynamodb -- $(TOOLS)/dlicense-regions serve

## region-drill: a mixed load on three regions, one cut off for 30 s, then
## every log and every region's read models checked (about 1.5 minutes);
## DRILL_ARGS=… changes it
DRILL_ARGS ?= -members 20 -load 60s -cut-after 15s -cut-for 30s
region-drill: $(TOOLS)/dlicense-regions $(TOOLS)/withdynamodb
	@exec $(TOOLS)/withdynamodb -- $(TOOLS)/dlicense-regions drill $(DRILL_ARGS)

## invoke: a function's bootstrap under the Lambda Runtime Interface Emulator,
## as sam local invoke runs it but without Docker (FUNCTION=ApiFunction
## EVENT=events/views.json), with the template's environment, on DynamoDB
## Local: make run-dynamodb's if DYNAMODB_ENDPOINT is set, else one of its own
FUNCTION ?= ApiFunction
EVENT ?= events/views.json
invoke: $(TOOLS)/dlicense-invoke $(TOOLS)/withdynamodb
	@$(if $(DYNAMODB_ENDPOINT),,$(TOOLS)/withdynamodb -- )$(TOOLS)/dlicense-invoke -function $(FUNCTION) -event $(EVENT) $(if $(LOGS),-logs)

## sam-env: write .cache/sam/env.json, the env-vars file of sam local invoke
## and start-api (samconfig's local environment), pointing at DynamoDB Local
## on SAM_DDB (default http://host.docker.internal:8000)
sam-env: $(TOOLS)/dlicense-invoke
	@$(TOOLS)/dlicense-invoke -sam-env .cache/sam/env.json -endpoint $(or $(SAM_DDB),http://host.docker.internal:8000)

## pseudonym: the pseudonym the logs show for a member (MEMBER=m-1), to
## find the member's log lines (docs/operations.md, Logs and metrics)
pseudonym: $(LOCAL)
	@$(LOCAL) pseudonym -member $(or $(MEMBER),m-1)

## token: a dev member token for curl (MEMBER=… PLAN=… SCOPE=…)
token: $(LOCAL)
	@$(LOCAL) token -member $(or $(MEMBER),m-1) -plan $(PLAN) -scope "$(SCOPE)"

## build: every function's bootstrap
build: build-ApiFunction build-StreamsFunction build-JobsFunction

build-ApiFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/$(if $(filter bin,$(ARTIFACTS_DIR)),ApiFunction/,)bootstrap ./functions/api

build-StreamsFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/$(if $(filter bin,$(ARTIFACTS_DIR)),StreamsFunction/,)bootstrap ./functions/streams

build-JobsFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/$(if $(filter bin,$(ARTIFACTS_DIR)),JobsFunction/,)bootstrap ./functions/jobs

## clean: remove .cache (DynamoDB Local, dev keys, tools), bin and .aws-sam
clean:
	rm -rf .cache bin .aws-sam

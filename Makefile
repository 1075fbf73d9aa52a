# loft: build, test, fuzz, bench. `make test` is what CI runs.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/loftstore/loft/cli.version=$(VERSION)
BIN      := bin/loft
FUZZTIME ?= 20000x
FUZZLOG  ?= .fuzzlog
PKGS     := ./...

BENCHDIR ?= .bench

.PHONY: all build test vet fuzz bench bench-tools s3-clients minio-ft clean

all: build

# A static binary: pure Go, no cgo (modernc.org/sqlite is a translation of C).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)

# Every test under the race detector (which needs cgo and a C compiler),
# then each fuzz target briefly. The timeout only stops a hang: the
# testscripts package (crash tests of the real binary) takes about 22
# minutes on 2 cores, and this machine's disk speed drifts.
test: vet s3-clients
	LOFT_S3_CLIENTS=require LOFT_MINIO_FT=$(MINIO_FT) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 60m $(PKGS)
	$(MAKE) fuzz

# Runs every Fuzz* target of every package for FUZZTIME each. The budget is
# a count of inputs, not a duration: Go 1.26's coordinator can fail a
# duration-bounded run with a bare "context deadline exceeded" at its end
# (go.dev/issue/75804, fixed in Go 1.27), which is what made this target
# flaky. A failing run's whole output is kept in $(FUZZLOG) and printed.
fuzz:
	@set -e; mkdir -p $(FUZZLOG); for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			log=$(FUZZLOG)/$$(basename $$pkg).$$f.log; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > $$log 2>&1 || \
				{ cat $$log; echo "fuzz $$f failed; its output is in $$log"; exit 1; }; \
		done; \
	done

# Go micro-benchmarks, then the end-to-end figures of the real binary, each
# printed next to the limit measured in the same run.
bench: build bench-tools
	$(GO) test -run '^$$' -bench . -benchtime 20x ./store/
	$(GO) run ./bench -loft $(BIN) -dir $(BENCHDIR)

# The peers the trees figures are measured against, from Debian's packages.
bench-tools:
	@command -v restic >/dev/null && command -v borg >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic borgbackup; }

# The S3 clients the gateway's tests run (testscripts/s3clients_test.go),
# from Debian's packages; LOFT_S3_CLIENTS=require above makes a missing one
# a failure rather than a skip.
s3-clients: minio-ft
	@test -x /usr/bin/aws -a -x /usr/bin/s3cmd -a -x /usr/bin/rclone -a -x /usr/bin/restic && \
		/usr/bin/python3 -c 'import boto3' 2>/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli s3cmd rclone restic python3-boto3; }

# minio-go's functional test program, from its module at the version
# testscripts/testdata/minio-go/go.mod pins (with go.sum, so the build is
# the same everywhere): its file is built as a program of its own.
MINIO_FT := $(CURDIR)/.minio-ft/ft
minio-ft:
	@test -x $(MINIO_FT) || { set -e; d=$(CURDIR)/.minio-ft; rm -rf $$d; mkdir -p $$d; \
		cp testscripts/testdata/minio-go/go.mod testscripts/testdata/minio-go/go.sum $$d/; \
		cd $$d; src=$$($(GO) mod download -json github.com/minio/minio-go/v7 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		cp $$src/functional_tests.go .; chmod u+w functional_tests.go; \
		CGO_ENABLED=0 $(GO) build -o ft functional_tests.go; }

clean:
	rm -rf bin $(BENCHDIR) $(FUZZLOG) .minio-ft

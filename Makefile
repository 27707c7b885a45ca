# ferry's build. `make demo` and `make test` are the two commands a new
# machine needs; both install what they use.
GO       ?= go
TESTBIN  := $(CURDIR)/.testbin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s
export FERRY_TESTBIN := $(TESTBIN)

# Fuzz targets: package and function, run briefly by `make test`, longer by `make fuzz`.
FUZZ_TARGETS := ./archive:FuzzOpenSet ./manifest:FuzzParseBOM ./manifest:FuzzReadBundle ./manifest:FuzzParseTransferSpec ./manifest:FuzzYAMLDecodedSize ./registry:FuzzParseDestination ./verify:FuzzDecodeReceipt

.PHONY: all build test unit fuzz-short fuzz lint testbin demo bench clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/ferry ./cmd/ferry

testbin:
	bash hack/testbin.sh

test: testbin
	$(GO) vet ./...
	$(GO) test -timeout 20m ./...
	$(MAKE) fuzz-short

unit:
	$(GO) test -short ./...

fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build testbin
	bash hack/demo.sh

bench: build testbin
	bash hack/bench.sh

clean:
	rm -rf bin .demo

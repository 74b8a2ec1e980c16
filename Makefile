# Developer commands. CI runs .ci/run, which runs the README's test command.
.PHONY: test lint bench bench-relay fuzz ci

test:
	go test -race -count=1 -timeout 30m ./...

lint:
	gofmt -l $$(git ls-files '*.go')
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@latest ./...

bench:
	go test -run='^$$' -bench=. -benchtime=2s ./

# The relay's figures (docs/benchmarks.md): every scenario on every dialect.
bench-relay:
	for d in postgres mysql sqlite; do for s in drain latency enqueue commit pressure memory idle outage; do \
		go run ./cmd/outbox-bench $$s --dialect $$d || exit 1; done; done

fuzz:
	go test -run='^$$' -fuzz=FuzzDecodeHeaders -fuzztime=60s ./
	go test -run='^$$' -fuzz=FuzzHeadersRoundTrip -fuzztime=60s ./
	go test -run='^$$' -fuzz=FuzzValidate -fuzztime=60s ./
	go test -run='^$$' -fuzz=FuzzParseDatabaseURL -fuzztime=60s ./cmd/relay/

ci:
	bash .ci/run

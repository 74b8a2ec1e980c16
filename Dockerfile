# syntax=docker/dockerfile:1
#
# The relay's image, built from this checkout:
#
#   docker build -t outbox-relay \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" .
#   docker run --rm outbox-relay version
#
# A static binary (CGO_ENABLED=0: lib/pq, go-sql-driver/mysql and
# modernc.org/sqlite are pure Go) on distroless/static, run as the numeric
# non-root user 65532 so that Kubernetes' runAsNonRoot can verify it.
# deploy/dockerfile_test.go runs this file's go build line as it is written and
# checks the binary; releases use .goreleaser.yaml with the same flags and
# deploy/release.Dockerfile, whose final stage is this one's.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=""
ARG COMMIT=""
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/relay ./cmd/relay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/relay /usr/local/bin/relay
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/relay"]
CMD ["run"]

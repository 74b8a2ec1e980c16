# The relay's image as a release builds it: goreleaser (.goreleaser.yaml,
# dockers_v2) builds the binaries with the flags of ../Dockerfile and puts
# each platform's under linux/amd64/, linux/arm64/ in the build context.
# The final stage is the same as ../Dockerfile's (deploy/dockerfile_test.go
# checks it).
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/relay /usr/local/bin/relay
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/relay"]
CMD ["run"]

// Package deploy holds no code: it is the home of the deployment files
// (release.Dockerfile, kubernetes/) and of the tests that keep them, the
// Dockerfile and .goreleaser.yaml at the module's root true without docker,
// Kubernetes or goreleaser at hand: the Dockerfile's go build line, run as it
// is written, must give a static binary that runs as a non-root user; the
// release configuration must build with the same flags; every flag and
// environment variable the Kubernetes example sets must be one relay
// accepts. See docs/deploy.md.
package deploy

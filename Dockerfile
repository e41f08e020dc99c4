# syntax=docker/dockerfile:1
#
# The cqrskit sample Product service as a small, static, non-root image.
#
#   docker build -t cqrskit-sample .
#   docker run --rm -p 8080:8080 -v cqrskit-data:/data cqrskit-sample
#
# Without flags it runs everything in one process on SQLite and an
# in-process NATS server, both in /data. docker-compose.yml runs it on
# PostgreSQL and NATS as separate api, relay and worker services.
#
# With no registry (podman, images from scripts/images.sh; see
# docs/CONTAINERS.md), name the local base images:
#
#   podman build --format docker --build-arg GO_IMAGE=localhost/cqrskit/golang:1.26.8 \
#     --build-arg RUNTIME_IMAGE=localhost/cqrskit/static:nonroot -t cqrskit-sample:dev .
#
# (--format docker: podman's default OCI format has no HEALTHCHECK.)

ARG GO_IMAGE=golang:1.26.8
# distroless/static: CA certificates and time zones, no shell, and the
# "nonroot" user (65532).
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# The module proxy, if not the default one.
ARG GOPROXY=https://proxy.golang.org,direct
ENV GOPROXY=${GOPROXY} GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOPATH=/go
WORKDIR /src
# Modules first, so source edits do not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: a static binary (the SQLite driver is pure Go).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/cqrskit-sample ./sample \
 && mkdir -p /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/cqrskit-sample /cqrskit-sample
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CQRSKIT_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
# No curl in the image: the binary probes itself.
HEALTHCHECK --interval=5s --timeout=5s --start-period=15s --retries=5 \
  CMD ["/cqrskit-sample", "--probe=http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/cqrskit-sample"]

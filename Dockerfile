# syntax=docker/dockerfile:1
# stsguard's image: a static binary on distroless, running as nonroot
# (65532), as deploy/base expects (runAsNonRoot, read-only root filesystem).
#   make docker-build IMG=ghcr.io/stsguard/stsguard:v0.1.0
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/stsguard/stsguard/internal/version.Version=${VERSION} -X github.com/stsguard/stsguard/internal/version.Commit=${COMMIT}" \
    -o /out/stsguard ./cmd/stsguard

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/stsguard /stsguard
USER 65532:65532
ENTRYPOINT ["/stsguard"]
CMD ["serve"]

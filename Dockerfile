# Autogate image: the autogate binary (server, runner, manager and the client
# verbs) and, once ./functions/runner exists, the Lambda runner, on Debian
# bookworm-slim with what services need at run time: python3 + venv,
# ansible-core and OpenTofu. The entrypoint is the autogate binary: the ECS
# services run it with `server` / `runner`; the Lambda runner overrides the
# entrypoint with /usr/local/bin/autogate-lambda-runner.
#
#   docker build -t autogate .                          # host architecture
#   docker build --platform linux/arm64 -t autogate .   # cross-compiles Go natively

ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm
# OpenTofu release from OpenTofu's own apt repository (packages.opentofu.org).
ARG TOFU_VERSION=1.11.1

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
        go build -ldflags="-s -w" -o /out/autogate ./cmd/autogate && \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
        go build -ldflags="-s -w" -o /out/autogate-shim ./cmd/autogate-shim
RUN if [ -d functions/runner ]; then \
        GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
        go build -tags lambda.norpc -ldflags="-s -w" -o /out/autogate-lambda-runner ./functions/runner; \
    fi

FROM debian:${DEBIAN_RELEASE}-slim
ARG TOFU_VERSION
ARG DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates curl gnupg git openssh-client \
        python3 python3-venv ansible-core; \
    install -m 0755 -d /etc/apt/keyrings; \
    curl -fsSL https://get.opentofu.org/opentofu.gpg -o /etc/apt/keyrings/opentofu.gpg; \
    curl -fsSL https://packages.opentofu.org/opentofu/tofu/gpgkey \
        | gpg --no-tty --batch --dearmor -o /etc/apt/keyrings/opentofu-repo.gpg; \
    chmod a+r /etc/apt/keyrings/opentofu.gpg /etc/apt/keyrings/opentofu-repo.gpg; \
    echo "deb [signed-by=/etc/apt/keyrings/opentofu.gpg,/etc/apt/keyrings/opentofu-repo.gpg] https://packages.opentofu.org/opentofu/tofu/any/ any main" \
        > /etc/apt/sources.list.d/opentofu.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "tofu=${TOFU_VERSION}"; \
    apt-get purge -y --auto-remove gnupg; \
    rm -rf /var/lib/apt/lists/*; \
    tofu version; ansible --version; python3 -m venv --help >/dev/null

COPY --from=build /out/ /usr/local/bin/
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/autogate autogate
USER 10001:10001
WORKDIR /home/autogate
# The server listens on every interface in a container (the binary's default
# is 127.0.0.1:8443); without AUTOGATE_TLS_CERT it serves HTTPS with a
# self-signed certificate, which is what the load balancer talks to.
ENV AUTOGATE_LISTEN=:8443 PYTHONDONTWRITEBYTECODE=1
# 8443: gateway API, /healthz, /readyz (HTTPS). 9090: runner /metrics.
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/autogate"]
CMD ["server"]

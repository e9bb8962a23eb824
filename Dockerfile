# h2gw container image: a build stage with the -dev packages, and a runtime
# stage with only the four shared libraries h2gw links (and Debian's base).
#
#   docker build -t h2gw .
#   docker run --rm -p 8080:8080 -p 9901:9901 h2gw --backend host.docker.internal:8000
#
# Arguments after the image name are h2gw flags; they override the default
# config, /etc/h2gw/h2gw.conf (config/examples/container.conf: cleartext on
# 8080, admin on 9901, backend 127.0.0.1:8000). Mount another file there for
# TLS and the rest (deploy/kubernetes/ does this with a ConfigMap).

FROM debian:bookworm-slim AS build

# gcc only recommends libc6-dev, and --no-install-recommends would leave it out.
# node-llhttp ships llhttp's C sources, which the Makefile compiles in.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        gcc libc6-dev make pkg-config binutils \
        libuv1-dev libnghttp2-dev libssl-dev libinih-dev node-llhttp \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# The gateway only: the test origin and unit tests are not shipped.
# make install stages exactly what a package would hold.
RUN make -j"$(nproc)" build/h2gw \
 && make install DESTDIR=/stage PREFIX=/usr/local \
 && strip --strip-unneeded /stage/usr/local/bin/h2gw \
 && /stage/usr/local/bin/h2gw --version

FROM debian:bookworm-slim

# Runtime libraries only: libuv, nghttp2, OpenSSL (libssl and libcrypto) and
# inih. Backends with tls = on and a public CA need ca-certificates too, or
# tls_ca_file pointing at a mounted bundle.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libnghttp2-14 libssl3 libinih1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 h2gw \
 && useradd --system --uid 10001 --gid h2gw --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin h2gw

COPY --from=build /stage/usr/local/bin/h2gw /usr/local/bin/h2gw
COPY --from=build /stage/usr/local/share/h2gw /usr/local/share/h2gw
COPY --from=build /stage/usr/local/share/man/man1/h2gw.1 /usr/local/share/man/man1/h2gw.1
COPY config/examples/container.conf /etc/h2gw/h2gw.conf

# A numeric user, so Kubernetes can check runAsNonRoot without /etc/passwd.
# Unprivileged, hence ports above 1024; map 443 and 80 to them outside.
USER 10001:10001

# 8080 cleartext (h2c, HTTP/1.1), 8443 TLS when configured, 9901 admin.
EXPOSE 8080 8443 9901

# /livez on the admin listener. The image has no curl or wget and gains none:
# bash's /dev/tcp sends one HTTP/1.0 request and the status line must say 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9901 && printf 'GET /livez HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && IFS= read -r -t 2 status <&3 && [[ $status == 'HTTP/1.'[01]' 200 '* ]]"]

# SIGTERM drains (drain_delay, then GOAWAY and shutdown_timeout); give
# `docker stop -t` more than their sum (22 s with the default config).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/h2gw", "--config", "/etc/h2gw/h2gw.conf"]

#!/usr/bin/env bash
# `make run`: the test origin and the gateway with config/h2gw.conf (TLS on
# 8443 with a self-signed certificate generated into build/tls, cleartext on
# 8080, the origin on 8081), in the foreground until Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/gen-cert.sh build/tls localhost
build/h2gw --config config/h2gw.conf --check >/dev/null

build/origin --listen 127.0.0.1:8081 &
origin_pid=$!
gw_pid=
trap 'kill $origin_pid $gw_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

build/h2gw --config config/h2gw.conf &
gw_pid=$!
sleep 0.3

cat <<MSG

h2gw is running with config/h2gw.conf, proxying to the test origin on 127.0.0.1:8081.
Fetch through it with:

    curl -k https://localhost:8443/echo                      # HTTP/2 over TLS (ALPN h2)
    curl -k --http1.1 https://localhost:8443/echo            # HTTP/1.1 over TLS
    curl --http2-prior-knowledge http://127.0.0.1:8080/echo  # cleartext HTTP/2 (h2c)

Ctrl-C stops both.
MSG
wait $gw_pid

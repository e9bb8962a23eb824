#!/usr/bin/env bash
# `make h2spec`: the HTTP/2 conformance suite h2spec against the gateway, over
# h2c (prior knowledge) and over TLS. Starts the test origin and one gateway
# with a cleartext and a TLS listener on free 127.0.0.1 ports (a certificate
# generated into a temporary directory), runs h2spec against each, and fails
# if any case fails. Stops only what it started, by PID.
#
# The binary: $H2SPEC if set, else h2spec on the PATH, else
# ../shared/bin/h2spec beside the checkout if it exists; without one the run
# is skipped (exit 0) with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

h2spec=${H2SPEC:-}
if [ -z "$h2spec" ]; then
    if command -v h2spec >/dev/null 2>&1; then
        h2spec=$(command -v h2spec)
    elif [ -x ../shared/bin/h2spec ]; then
        h2spec=../shared/bin/h2spec
    else
        echo "h2spec: skipped: no h2spec binary (set H2SPEC=/path/to/h2spec)"
        exit 0
    fi
elif [ ! -x "$h2spec" ]; then
    echo "h2spec: H2SPEC=$h2spec is not an executable file" >&2
    exit 2
fi

tmp=$(mktemp -d)
origin_pid=
gw_pid=
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
cleanup() {
    for pid in $gw_pid $origin_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $gw_pid $origin_pid; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until file $1 holds $2 "listening on" lines (5 s at most).
wait_listening() {
    for _ in $(seq 50); do
        [ "$(cat "$1" 2>/dev/null | grep -c 'listening on')" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "h2spec: $1 never said it was listening:" >&2
    cat "$1" >&2
    return 1
}

bash scripts/gen-cert.sh "$tmp/tls" localhost 2>/dev/null

build/origin --listen 127.0.0.1:0 >"$tmp/origin.out" 2>"$tmp/origin.err" &
origin_pid=$!
wait_listening "$tmp/origin.out" 1
origin_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/origin.out" | head -1)

cat >"$tmp/h2gw.conf" <<CONF
[gateway]
log_level = error

[listen plain]
address = 127.0.0.1:0

[listen tls]
address = 127.0.0.1:0
tls_cert = $tmp/tls/server.crt
tls_key = $tmp/tls/server.key

[backend default]
server = 127.0.0.1:$origin_port
CONF

build/h2gw --config "$tmp/h2gw.conf" >"$tmp/h2gw.out" 2>"$tmp/h2gw.err" &
gw_pid=$!
wait_listening "$tmp/h2gw.out" 2
h2c_port=$(grep 'listening on' "$tmp/h2gw.out" | grep -v '(tls)' | sed 's/.*:\([0-9]*\).*/\1/' | head -1)
tls_port=$(grep 'listening on' "$tmp/h2gw.out" | grep '(tls)' | sed 's/.*:\([0-9]*\) (tls).*/\1/' | head -1)

status=0
# Runs h2spec with the given arguments; fails on a non-zero exit or any
# failed case in its summary line.
run() {
    local name=$1
    shift
    local out="$tmp/h2spec-$name.txt" rc=0
    "$h2spec" -h 127.0.0.1 "$@" >"$out" 2>&1 || rc=$?
    local summary
    summary=$(grep -aE '^[0-9]+ tests, ' "$out" | tail -1 || true)
    if [ "$rc" -ne 0 ] || [ -z "$summary" ] || ! grep -qE ', 0 failed$' <<<"$summary"; then
        echo "h2spec $name: FAILED (exit $rc): ${summary:-no summary}"
        if [ -n "$summary" ]; then
            grep -a -A6 '×' "$out" | tail -80
        else
            tail -20 "$out"
        fi
        status=1
    else
        echo "h2spec $name: $summary"
    fi
}
run h2c -p "$h2c_port"
run tls -p "$tls_port" -t -k

if ! kill -0 "$gw_pid" 2>/dev/null; then
    echo "h2spec: the gateway died during the run:" >&2
    cat "$tmp/h2gw.err" >&2
    status=1
fi
exit $status

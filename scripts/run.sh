#!/usr/bin/env bash
# `make run`: the test origin and the gateway on the default local setup, in
# the foreground until Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

ORIGIN_ADDR=${ORIGIN_ADDR:-127.0.0.1:8081}
LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8080}

build/origin --listen "$ORIGIN_ADDR" &
origin_pid=$!
trap 'kill $origin_pid $gw_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

build/h2gw --listen "$LISTEN_ADDR" --backend "$ORIGIN_ADDR" --log-level info &
gw_pid=$!
sleep 0.3

cat <<MSG

h2gw is listening on $LISTEN_ADDR, proxying to the test origin on $ORIGIN_ADDR.
Fetch through it with:

    curl --http2-prior-knowledge http://$LISTEN_ADDR/echo

Ctrl-C stops both.
MSG
wait $gw_pid

#!/usr/bin/env bash
# `make run`: the test origin and the gateway with config/h2gw.conf, in the
# foreground until Ctrl-C (SIGINT) or SIGTERM stops both; then it exits 0.
#
# Ports come from the environment, so a second copy or a busy port is one
# variable away:
#   H2GW_PORT        cleartext listener: h2c and HTTP/1.1      (default 8080)
#   H2GW_TLS_PORT    TLS listener, self-signed in build/tls    (default 8443)
#   ORIGIN_PORT      the test origin                           (default 8081)
#   H2GW_ADMIN_PORT  admin listener (/livez /readyz /metrics)  (default 9901)
# H2GW_BIN and ORIGIN_BIN pick other binaries (the tests pass the ASan build).
#
# config/h2gw.conf is copied to build/run-$H2GW_PORT.conf with these ports.
# "running" is printed only once both programs have said they listen and the
# port answers; if either fails, the script says which and on what port, and
# exits 1.
# shellcheck disable=SC2317  # stop, cleanup and on_signal run from traps
set -euo pipefail
cd "$(dirname "$0")/.."

H2GW_PORT=${H2GW_PORT:-8080}
H2GW_TLS_PORT=${H2GW_TLS_PORT:-8443}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
H2GW_ADMIN_PORT=${H2GW_ADMIN_PORT:-9901}
h2gw=${H2GW_BIN:-build/h2gw}
origin=${ORIGIN_BIN:-build/origin}

for var in H2GW_PORT H2GW_TLS_PORT ORIGIN_PORT H2GW_ADMIN_PORT; do
    if ! [[ ${!var} =~ ^[1-9][0-9]{0,4}$ ]] || ((${!var} > 65535)); then
        echo "run: $var=${!var} is not a port number (1-65535)" >&2
        exit 1
    fi
done

bash scripts/gen-cert.sh build/tls localhost

# The example's ports, replaced; `t` ends the script for a line once one
# substitution matched, so swapped ports (H2GW_PORT=8443) are not replaced twice.
conf=build/run-$H2GW_PORT.conf
sed -e "s/^address = 127\.0\.0\.1:8443\$/address = 127.0.0.1:$H2GW_TLS_PORT/;t" \
    -e "s/^address = 127\.0\.0\.1:8080\$/address = 127.0.0.1:$H2GW_PORT/;t" \
    -e "s/^server = 127\.0\.0\.1:8081\$/server = 127.0.0.1:$ORIGIN_PORT/;t" \
    -e "s/^address = 127\.0\.0\.1:9901\$/address = 127.0.0.1:$H2GW_ADMIN_PORT/;t" \
    config/h2gw.conf >"$conf"
for want in "address = 127.0.0.1:$H2GW_TLS_PORT" "address = 127.0.0.1:$H2GW_PORT" \
    "server = 127.0.0.1:$ORIGIN_PORT"; do
    if ! grep -qxF "$want" "$conf"; then
        echo "run: config/h2gw.conf no longer has the listener or server scripts/run.sh" \
            "rewrites ('$want' missing from $conf)" >&2
        exit 1
    fi
done

# The admin listener is passed as a flag when this h2gw has one (flags
# override the file), so the script works before and after it exists.
# The help text is read whole first: `| grep -q` would end the pipe early.
help=$("$h2gw" --help)
admin_args=()
if [[ $help == *$'\n  --admin '* ]]; then
    admin_args=(--admin "127.0.0.1:$H2GW_ADMIN_PORT")
fi

if ! "$h2gw" --config "$conf" "${admin_args[@]}" --check >/dev/null; then
    echo "run: $conf does not validate (errors above)" >&2
    exit 1
fi

origin_pid=
gw_pid=
origin_out=build/run-$H2GW_PORT.origin.out
gw_out=build/run-$H2GW_PORT.h2gw.out

# A process that exited stays a zombie until it is waited for, and `kill -0`
# still finds a zombie: read its state instead.
alive() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# SIGTERM to one child (h2gw drains, with nothing in flight it exits at
# once), SIGKILL if it is still there after 15 s, then reap it.
stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop "$gw_pid"
    gw_pid=
    stop "$origin_pid"
    origin_pid=
}

# Ctrl-C or SIGTERM is how `make run` is meant to end: stop both, exit 0.
# (Children started with & ignore SIGINT, so they stop only through here.)
on_signal() {
    echo >&2
    echo "run: stopping h2gw and the origin" >&2
    cleanup
    exit 0
}
trap on_signal INT TERM
trap cleanup EXIT

# in_use PORT: something accepts connections on 127.0.0.1:PORT.
in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_up NAME PID OUT PORT:VAR...: wait until NAME (PID, stdout in OUT) has
# printed that it listens on the first PORT and a request there gets an
# answer. The "listening" line matters: when another program already holds
# the port, that program answers, not ours. If NAME exits first, or 10 s
# pass, name the ports (of those given) that another program holds, with the
# variable that moves each, and exit 1.
wait_up() {
    local name=$1 pid=$2 out=$3 port=${4%%:*} i rc pv busy=0
    shift 3
    for ((i = 0; i < 100; i++)); do
        if ! alive "$pid"; then
            rc=0
            wait "$pid" || rc=$?
            for pv in "$@"; do
                if in_use "${pv%%:*}"; then
                    echo "run: $name failed to start (exit status $rc): port ${pv%%:*}" \
                        "(127.0.0.1:${pv%%:*}) is already in use; set ${pv#*:} to another port" >&2
                    busy=1
                fi
            done
            if [ "$busy" = 0 ]; then
                echo "run: $name failed to start on 127.0.0.1:$port (exit status $rc);" \
                    "its errors are above" >&2
            fi
            exit 1
        fi
        if grep -q "listening on 127\.0\.0\.1:$port\b" "$out" 2>/dev/null &&
            curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
            return 0
        fi
        sleep 0.1
    done
    echo "run: $name did not answer on 127.0.0.1:$port within 10 s" >&2
    exit 1
}

"$origin" --listen "127.0.0.1:$ORIGIN_PORT" >"$origin_out" &
origin_pid=$!
wait_up "the test origin" "$origin_pid" "$origin_out" "$ORIGIN_PORT:ORIGIN_PORT"

"$h2gw" --config "$conf" "${admin_args[@]}" >"$gw_out" &
gw_pid=$!
admin_pv=()
[ ${#admin_args[@]} -eq 0 ] || admin_pv=("$H2GW_ADMIN_PORT:H2GW_ADMIN_PORT")
wait_up h2gw "$gw_pid" "$gw_out" "$H2GW_PORT:H2GW_PORT" "$H2GW_TLS_PORT:H2GW_TLS_PORT" \
    "${admin_pv[@]}"
if ! grep -q "listening on 127\.0\.0\.1:$H2GW_TLS_PORT\b" "$gw_out"; then
    echo "run: h2gw is not listening on 127.0.0.1:$H2GW_TLS_PORT (TLS)" >&2
    exit 1
fi

admin_line=
if [ ${#admin_args[@]} -gt 0 ]; then
    admin_line="    curl http://127.0.0.1:$H2GW_ADMIN_PORT/metrics                   # admin: /livez /readyz /metrics"
fi

cat <<MSG

h2gw is running with $conf (from config/h2gw.conf), proxying to the test
origin on 127.0.0.1:$ORIGIN_PORT. Its standard output goes to $gw_out.
Fetch through it with:

    curl -k https://localhost:$H2GW_TLS_PORT/echo                      # HTTP/2 over TLS (ALPN h2)
    curl -k --http1.1 https://localhost:$H2GW_TLS_PORT/echo            # HTTP/1.1 over TLS
    curl --http2-prior-knowledge http://127.0.0.1:$H2GW_PORT/echo  # cleartext HTTP/2 (h2c)
$admin_line
Ctrl-C stops both.
MSG

# Until a signal (handled above) or one of the two exits on its own, which
# is a failure: say which, and exit 1 (the EXIT trap stops the other).
rc=0
wait -n "$origin_pid" "$gw_pid" || rc=$?
if alive "$gw_pid"; then
    echo "run: the test origin exited (status $rc)" >&2
else
    echo "run: h2gw exited (status $rc)" >&2
fi
exit 1

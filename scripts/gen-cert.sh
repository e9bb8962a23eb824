#!/usr/bin/env bash
# Generates a self-signed certificate for local use (make run, tests):
#   scripts/gen-cert.sh DIR [NAME...]
# writes DIR/server.crt and DIR/server.key for the names given (default
# localhost), unless they already exist.
set -euo pipefail
dir=${1:?usage: gen-cert.sh DIR [NAME...]}
shift || true
names=("${@:-localhost}")
[ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ] && exit 0
mkdir -p "$dir"
san="DNS:${names[0]}"
for n in "${names[@]:1}"; do san="$san,DNS:$n"; done
san="$san,IP:127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -keyout "$dir/server.key" -out "$dir/server.crt" -subj "/CN=${names[0]}" \
    -addext "subjectAltName=$san" 2>/dev/null
echo "gen-cert: wrote $dir/server.crt and $dir/server.key (${names[*]})" >&2

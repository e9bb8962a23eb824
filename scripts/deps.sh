#!/usr/bin/env bash
# Checks the Debian packages h2gw builds and tests with, and installs the
# missing ones. As root it runs apt-get; otherwise it prints the exact command
# and exits non-zero, because a build must never half-succeed on a machine
# that lacks a library.
set -euo pipefail

build_pkgs=(gcc libc6-dev make pkg-config libuv1-dev libnghttp2-dev libssl-dev node-llhttp
            libinih-dev libcmocka-dev)
# nginx is the real backend of the soak (scripts/soak).
# python3-prometheus-client parses /metrics the way a real scraper does.
test_pkgs=(python3 python3-pytest python3-h2 python3-yaml python3-prometheus-client curl
           nghttp2-client openssl nginx)
# Fuzzing and formatting: clang-14 builds the libFuzzer targets (gcc has no
# libFuzzer), libclang-rt-14-dev ships libclang_rt.fuzzer and the sanitizer
# runtimes for clang, clang-format-14 is the one .clang-format is written for.
tool_pkgs=(clang libclang-rt-14-dev clang-format)

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}" "${tool_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: run as root: apt-get update && $cmd" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
$cmd

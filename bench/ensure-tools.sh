#!/usr/bin/env bash
# Makes sure the load generator `make bench` drives is installed: wrk, from Debian's packages.
# The index is only refreshed when the plain install fails, so a warm machine stays offline.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi

need_wrk() {
    echo "bench: wrk is needed to run the benchmarks and could not be installed: $1." >&2
    echo "bench: install it yourself (Debian/Ubuntu: apt-get install wrk) and run make bench again." >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || need_wrk "apt-get is not available"
[ "$(id -u)" -eq 0 ] || need_wrk "installing packages needs root"

export DEBIAN_FRONTEND=noninteractive
echo "bench: installing wrk from Debian's packages" >&2
if ! apt-get install -y wrk; then
    apt-get update || need_wrk "apt-get update failed"
    apt-get install -y wrk || need_wrk "apt-get install -y wrk failed"
fi
command -v wrk >/dev/null 2>&1 || need_wrk "the wrk package installed no wrk on PATH"

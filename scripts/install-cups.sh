#!/usr/bin/env bash
# Installs Debian's CUPS for the agent's printer and service tests, lets queues print to
# file:///dev/null (FileDevice), and starts cupsd through `service` (as on gateways where
# systemd is not PID 1). Idempotent: installs only what is missing, starts only when stopped.
set -euo pipefail
need_install=0
for tool in cupsd lpstat lpadmin cupsenable cancel lp; do
    command -v "$tool" >/dev/null || need_install=1
done
if [ "$need_install" -eq 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-cups: run as root (apt-get install cups cups-client cups-bsd)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends cups cups-client cups-bsd >/dev/null
fi
conf=/etc/cups/cups-files.conf
if ! grep -q '^FileDevice Yes' "$conf"; then
    echo 'FileDevice Yes' >>"$conf"
    service cups restart >/dev/null 2>&1 || true
fi
# `lpstat -r` exits 0 whether or not the scheduler runs: read what it says.
running() { lpstat -r 2>/dev/null | grep -q '^scheduler is running'; }
if ! running; then
    service cups start >/dev/null || true
fi
for _ in $(seq 1 50); do
    running && break
    sleep 0.2
done
if ! running; then
    echo "install-cups: cupsd did not start ($(lpstat -r 2>&1))" >&2
    exit 1
fi
lpstat -r

#!/usr/bin/env bash
# Installs Debian's Mosquitto (broker and clients) for the tests that start a second broker
# with the files `storefleet broker-config mosquitto` writes. Idempotent: installs only what
# is missing; starts nothing (the tests start their own broker on a free port).
set -euo pipefail
if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-mosquitto: run as root (apt-get install mosquitto mosquitto-clients)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends mosquitto mosquitto-clients >/dev/null

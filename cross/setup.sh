#!/usr/bin/env bash
# Installs the Debian cross toolchain for building the agent for aarch64 and running it
# under qemu-user. Idempotent: what is already installed is not installed again.
#
# The rustup toolchain cannot download other targets, so the aarch64 build uses Debian's
# rustc-web with its arm64 standard library (same compiler version for host and target).
# qemu-user comes from Debian's backports (10.x), the version the smoke run is checked with.
set -euo pipefail

sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
backports="$codename-backports"

need=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
qemu_ok=false
if command -v qemu-aarch64 >/dev/null; then
  major=$(qemu-aarch64 --version | head -n1 | sed -E 's/.*version ([0-9]+).*/\1/')
  [ "${major:-0}" -ge 10 ] && qemu_ok=true
fi
if [ ${#missing[@]} -eq 0 ] && $qemu_ok; then
  echo "cross toolchain: already installed"
  exit 0
fi

dpkg --print-foreign-architectures | grep -qx arm64 || $sudo_ dpkg --add-architecture arm64
list=/etc/apt/sources.list.d/storefleet-backports.list
if ! $qemu_ok && ! grep -rqs "$backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian $backports main" | $sudo_ tee "$list" >/dev/null
fi
$sudo_ apt-get update -q
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  $sudo_ apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! $qemu_ok; then
  $sudo_ apt-get install -y -q --no-install-recommends -t "$backports" qemu-user
fi
echo "cross toolchain: installed (qemu $(qemu-aarch64 --version | head -n1))"

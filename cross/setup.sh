#!/usr/bin/env bash
# Installs the Debian cross toolchain for building the agent for aarch64 and running it
# under qemu-user. Idempotent: packages already present are not installed again.
#
# The rustup toolchain cannot download other targets, so the aarch64 build uses Debian's
# rustc-web with its arm64 standard library (same compiler version for host and target).
set -euo pipefail

need=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "cross toolchain: already installed"
  exit 0
fi
sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
dpkg --print-foreign-architectures | grep -qx arm64 || $sudo_ dpkg --add-architecture arm64
$sudo_ apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "cross toolchain: installed ${missing[*]}"

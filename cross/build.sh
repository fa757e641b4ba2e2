#!/usr/bin/env bash
# Builds storefleet-agent for aarch64-unknown-linux-gnu with Debian's rustc-web and its
# arm64 standard library (installed by cross/setup.sh; the rustup toolchain cannot
# download other targets here). Prints the stripped binary's path and size.
#
#   PROFILE=dist (default; size-optimised) | release
set -euo pipefail
cd "$(dirname "$0")/.."
bash cross/setup.sh

target=aarch64-unknown-linux-gnu
profile=${PROFILE:-dist}
export RUSTC=/usr/bin/rustc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# Its own target directory: artifacts of two compilers must not mix.
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-target/cross}

/usr/bin/cargo build --locked --profile "$profile" --target "$target" \
  -p storefleet-agent --bin storefleet-agent

bin="$CARGO_TARGET_DIR/$target/$profile/storefleet-agent"
# ELF e_machine (bytes 18-19) is 0xb7 for aarch64.
[ "$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ')" = "b700" ] || { echo "not an aarch64 binary: $bin"; exit 1; }
size=$(stat -c %s "$bin")
echo "aarch64 agent: $bin ($size bytes)"
limit=$((8 * 1024 * 1024))
[ "$size" -le "$limit" ] || { echo "aarch64 agent is over 8 MiB"; exit 1; }

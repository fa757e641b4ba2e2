#!/usr/bin/env bash
# Runs the agent's and the protocol's unit tests for aarch64 under qemu-user, then an
# end-to-end smoke run of the aarch64 agent binary (built by cross/build.sh) against the
# broker: Mosquitto when STOREFLEET_TEST_MQTT is set, else the embedded one.
#
# Left out under emulation: the host-metrics sampling test (sysinfo's CPU refresh has
# been seen to hang under qemu-user; the agent guards it with a timeout at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash cross/setup.sh

target=aarch64-unknown-linux-gnu
profile=${PROFILE:-dist}
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-target/cross}
runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"

(
  export RUSTC=/usr/bin/rustc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$runner"
  /usr/bin/cargo test --locked --target "$target" -p storefleet-protocol
  /usr/bin/cargo test --locked --target "$target" -p storefleet-agent --lib -- --skip collect::host::tests::a_sample
)

bin="$CARGO_TARGET_DIR/$target/$profile/storefleet-agent"
[ -x "$bin" ] || bash cross/build.sh
# The smoke driver runs on the host, with the host toolchain and target directory.
unset CARGO_TARGET_DIR
cargo run --locked --quiet -p storefleet-agent --example smoke -- \
  --agent "$bin" --runner "$runner" --arch aarch64

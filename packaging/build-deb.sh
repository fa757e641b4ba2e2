#!/usr/bin/env bash
# Builds the Debian packages into target/deb/:
#
#   packaging/build-deb.sh agent amd64        storefleet-agent_VERSION_amd64.deb
#   packaging/build-deb.sh agent arm64        from the cross build (cross/build.sh)
#   packaging/build-deb.sh controller amd64   storefleet_VERSION_amd64.deb (no simulator)
#
# Layout: binaries in /usr/bin, units in /lib/systemd/system, config in /etc/storefleet
# (conffiles: kept and asked about on upgrade; agent.d/ drop-ins are not the package's and
# are never touched), state in /var/lib/storefleet (agent) or /var/lib/storefleet-controller.
# Prints the package's path and size.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:?agent or controller}
arch=${2:-amd64}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out=target/deb
mkdir -p "$out"

case "$what/$arch" in
  agent/amd64)
    cargo build --locked --profile dist -p storefleet-agent --bin storefleet-agent
    bin=target/dist/storefleet-agent ;;
  agent/arm64)
    bash cross/build.sh >/dev/null
    bin=${CROSS_TARGET_DIR:-target/cross}/aarch64-unknown-linux-gnu/dist/storefleet-agent ;;
  controller/amd64)
    cargo build --locked --release -p storefleet-controller --bin storefleet
    bin=target/release/storefleet ;;
  *) echo "build-deb: $what for $arch is not built (agent amd64|arm64, controller amd64)"; exit 2 ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/storefleet"
if [ "$what" = agent ]; then
  name=storefleet-agent
  install -m 0755 "$bin" "$stage/usr/bin/storefleet-agent"
  install -m 0644 packaging/agent/storefleet-agent.service packaging/agent/storefleet-agent-enrolled.path \
    "$stage/lib/systemd/system/"
  install -m 0644 agent/src/config/default.toml "$stage/etc/storefleet/agent.toml"
  install -d "$stage/usr/share/storefleet/routines"
  install -m 0644 agent/routines/*.toml "$stage/usr/share/storefleet/routines/"
  description="Storefleet store-gateway agent
 Buffers the telemetry of the store's devices, runs maintenance routines and syncs
 with the Storefleet controller over MQTT. Enroll with: storefleet-agent enroll TOKEN"
  conffiles=/etc/storefleet/agent.toml
else
  name=storefleet
  install -m 0755 "$bin" "$stage/usr/bin/storefleet"
  install -m 0644 packaging/controller/storefleet.service "$stage/lib/systemd/system/"
  install -m 0644 controller/src/config/default.toml "$stage/etc/storefleet/controller.toml"
  description="Storefleet controller
 Keeps the fleet's asset records, pushes fleet tasks in waves, opens dispatch tickets and
 serves the web UI and the API."
  conffiles=/etc/storefleet/controller.toml
fi
install -d "$stage/usr/share/doc/$name"
install -m 0644 README.md "$stage/usr/share/doc/$name/README"
for s in postinst prerm postrm; do
  install -m 0755 "packaging/$what/$s" "$stage/DEBIAN/$s"
done
echo "$conffiles" > "$stage/DEBIAN/conffiles"
size_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# The newest glibc symbol version the binary needs (readelf reads any architecture's ELF).
glibc=$(readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
cat > "$stage/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: Storefleet <storefleet@localhost>
Section: admin
Priority: optional
Depends: libc6 (>= $glibc), adduser
Installed-Size: $size_kb
Description: $description
EOF
deb="$out/${name}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb ($(stat -c %s "$deb") bytes)"

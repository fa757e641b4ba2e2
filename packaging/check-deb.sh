#!/usr/bin/env bash
# Checks a package built by build-deb.sh without installing it: its architecture field, the
# architecture of the binary inside, its dependencies, and that every file the install
# flow needs is there (and nothing under /var or /etc/storefleet/agent.d, which belong to
# the gateway, not the package).
#
#   packaging/check-deb.sh target/deb/storefleet-agent_0.1.0_arm64.deb arm64
set -euo pipefail
deb=${1:?package}
arch=${2:?amd64 or arm64}
fail() { echo "check-deb: $deb: $*"; exit 1; }

[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "Architecture is $(dpkg-deb -f "$deb" Architecture), not $arch"
name=$(dpkg-deb -f "$deb" Package)
depends=$(dpkg-deb -f "$deb" Depends)
echo "$depends" | grep -q 'libc6 (>= 2\.[0-9]*)' || fail "Depends ($depends) names no libc6 version"
echo "$depends" | grep -q adduser || fail "Depends ($depends) lacks adduser (postinst makes the user)"

list=$(dpkg-deb -c "$deb" | awk '{print $6}')
case "$name" in
  storefleet-agent)
    want="./usr/bin/storefleet-agent ./lib/systemd/system/storefleet-agent.service
          ./lib/systemd/system/storefleet-agent-enrolled.path ./etc/storefleet/agent.toml
          ./usr/share/storefleet/routines/receipt-printer-unstick.toml"
    bin=usr/bin/storefleet-agent ;;
  storefleet)
    want="./usr/bin/storefleet ./lib/systemd/system/storefleet.service ./etc/storefleet/controller.toml"
    bin=usr/bin/storefleet ;;
  *) fail "unknown package $name" ;;
esac
for f in $want; do
  echo "$list" | grep -qx "$f" || fail "missing $f"
done
if echo "$list" | grep -q '^\./var/\|^\./etc/storefleet/agent\.d/.'; then
  fail "ships files under /var or agent.d/ (they are the gateway's)"
fi
dpkg-deb -I "$deb" conffiles | grep -q '^/etc/storefleet/' || fail "no conffiles"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
dpkg-deb -x "$deb" "$dir"
# ELF e_machine: 0x3e x86_64, 0xb7 aarch64.
machine=$(od -An -tx1 -j18 -N2 "$dir/$bin" | tr -d ' ')
case "$arch/$machine" in
  amd64/3e00|arm64/b700) ;;
  *) fail "$bin is ELF machine $machine, not $arch" ;;
esac
[ -x "$dir/$bin" ] || fail "$bin is not executable"
if [ "$name" = storefleet ]; then
  # The controller never carries the agent or the simulator (they are storefleet-sim's);
  # their source paths survive in panic locations even in a stripped binary.
  if grep -aqE '(^|[^a-z-])(agent|sim)/src/[a-z_/]+\.rs' "$dir/$bin"; then
    fail "$bin links agent or simulator code: $(grep -aoE '(agent|sim)/src/[a-z_/]+\.rs' "$dir/$bin" | sort -u | head -3 | tr '\n' ' ')"
  fi
fi
echo "ok: $deb ($name $arch, $(stat -c %s "$deb") bytes, Depends: $depends)"

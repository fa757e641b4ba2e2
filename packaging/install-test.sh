#!/usr/bin/env bash
# The install flow, end to end, in a fresh Debian root: the amd64 agent package installed
# with dpkg into a debootstrapped bookworm (made once from Debian's packages and kept in
# target/debroot; each run works on a copy), `storefleet-agent enroll TOKEN` against a
# controller running here, then the service's own command line (there is no systemd in a
# chroot) as the package's user; the gateway must enroll, come online and report its
# inventory. Then a reinstall keeps the enrollment, and a purge removes state, config and
# user. Needs root (debootstrap, chroot, mounting /proc).
#
#   bash packaging/install-test.sh [DEB]     (default: builds target/deb/..._amd64.deb)
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "install-test: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot)"

deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(bash packaging/build-deb.sh agent amd64 | cut -d' ' -f1)
fi
[ -f "$deb" ] || fail "no package $deb"
cargo build --locked --quiet -p storefleet-controller --bin storefleet
controller=$PWD/target/debug/storefleet

base=${DEBROOT:-$PWD/target/debroot}
if [ ! -e "$base/.storefleet-ready" ]; then
  command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  }
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$base"
  echo "== debootstrap bookworm into $base (once) from $mirror"
  debootstrap --variant=minbase --include=adduser bookworm "$base" "$mirror" >/dev/null
  touch "$base/.storefleet-ready"
fi

work=$(mktemp -d /tmp/storefleet-install.XXXXXX)
state=$(mktemp -d /tmp/storefleet-install-ctl.XXXXXX)
agent_pid=""
ctl_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
  [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null || true
  pkill -9 -f "$work/" 2>/dev/null || true
  umount "$work/proc" 2>/dev/null || true
  rm -rf "$work" "$state"
}
trap cleanup EXIT
cp -a "$base/." "$work/"
mount -t proc proc "$work/proc"
in_root() { chroot "$work" "$@"; }

echo "== install $(basename "$deb")"
cp "$deb" "$work/tmp/agent.deb"
in_root dpkg -i /tmp/agent.deb >/dev/null
in_root getent passwd storefleet >/dev/null || fail "no storefleet user"
uid=$(in_root id -u storefleet)
gid=$(in_root id -g storefleet)
[ -f "$work/etc/storefleet/agent.toml" ] || fail "no /etc/storefleet/agent.toml"
[ "$(stat -c %u "$work/var/lib/storefleet")" = "$uid" ] || fail "/var/lib/storefleet is not the service user's"

echo "== a controller, a store, a token"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port)
mqtt=$(free_port)
cat > "$state/controller.toml" <<EOF
[controller]
state_dir = "$state/state"
[http]
listen = "127.0.0.1:$http"
[mqtt]
listen = "127.0.0.1:$mqtt"
EOF
"$controller" --config "$state/controller.toml" serve >"$state/controller.log" 2>&1 &
ctl_pid=$!
for _ in $(seq 100); do [ -f "$state/state/admin-token" ] && break; sleep 0.1; done
# HTTPS with the controller's self-signed certificate: the CLI pins it from the config, the
# agent from its enrollment token.
api="$controller --config $state/controller.toml --url https://127.0.0.1:$http --token $(cat "$state/state/admin-token")"
for _ in $(seq 100); do $api stores >/dev/null 2>&1 && break; sleep 0.1; done
$api stores add S900 --name "Install store" --region north >/dev/null
token=$($api enroll-token create --store S900 | tail -1)

echo "== storefleet-agent enroll TOKEN (as root, as a technician would)"
in_root storefleet-agent enroll "$token"
[ "$(stat -c %u "$work/var/lib/storefleet/agent.key")" = "$uid" ] || fail "the key is not the service user's"
[ -f "$work/etc/storefleet/agent.d/50-enrollment.toml" ] || fail "no enrollment drop-in"

echo "== the service's command line, as the service user"
exec_start=$(sed -n 's/^ExecStart=//p' "$work/lib/systemd/system/storefleet-agent.service")
# shellcheck disable=SC2086 # the unit's command line, split as systemd would
chroot --userspec="$uid:$gid" "$work" $exec_start >"$state/agent.log" 2>&1 &
agent_pid=$!
ok=""
for _ in $(seq 300); do
  agents=$($api --json agents 2>/dev/null || true)
  assets=$($api --json assets --store S900 2>/dev/null || true)
  if echo "$agents" | grep -q '"online": true' && echo "$assets" | grep -q '"kind": "gateway"'; then
    ok=yes
    break
  fi
  sleep 0.2
done
[ -n "$ok" ] || { tail -20 "$state/agent.log"; tail -5 "$state/controller.log"; fail "the gateway did not come online and report"; }
echo "   online, gateway asset recorded"
kill "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""

echo "== reinstall keeps the enrollment; purge removes state, config and user"
in_root dpkg -i /tmp/agent.deb >/dev/null
[ -f "$work/etc/storefleet/agent.d/50-enrollment.toml" ] || fail "reinstall lost the enrollment"
[ -f "$work/var/lib/storefleet/agent.key" ] || fail "reinstall lost the key"
in_root dpkg --purge storefleet-agent >/dev/null
[ ! -e "$work/var/lib/storefleet" ] || fail "purge left /var/lib/storefleet"
[ ! -e "$work/etc/storefleet" ] || fail "purge left /etc/storefleet"
! in_root getent passwd storefleet >/dev/null || fail "purge left the storefleet user"
[ ! -e "$work/usr/bin/storefleet-agent" ] || fail "purge left the binary"
echo "install-test: ok"

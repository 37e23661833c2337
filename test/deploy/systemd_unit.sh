#!/usr/bin/env bash
# deploy/systemd/kvpaxosd.service, offline: systemd-analyze verify says
# nothing about it (any line, a warning included, fails), its exposure stays
# at or below 1.5 (systemd-analyze security), every variable of the example
# env file names a kvpaxosd flag, and KVPAXOS_CONFIG_FILE works as the file
# says. The unit is not started: this machine has no systemd running.
#
#   bash test/deploy/systemd_unit.sh KVPAXOSD
set -uo pipefail
KVPAXOSD="$(realpath "$1")"
root="$(cd "$(dirname "$0")/../.." && pwd)"
unit="$root/deploy/systemd/kvpaxosd.service"
example="$root/deploy/systemd/kvpaxos.env.example"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "PASS: $*"; }

command -v systemd-analyze >/dev/null ||
  { echo "FAIL: systemd-analyze is missing (Debian package systemd; deploy/install-deps.sh)"; exit 1; }

# verify needs ExecStart's binary: the same unit, pointed at the one just built.
grep -qx 'ExecStart=/usr/bin/kvpaxosd' "$unit" || fail "$unit has no line ExecStart=/usr/bin/kvpaxosd"
sed "s#^ExecStart=/usr/bin/kvpaxosd\$#ExecStart=$KVPAXOSD#" "$unit" >"$work/kvpaxosd.service"

# verify_quiet FILE: systemd-analyze verify's exit status and everything it said.
verify_quiet() {
  local out
  out="$(cd "$work" && systemd-analyze verify "$1" 2>&1)"
  local rc=$?
  [ "$rc" -eq 0 ] && [ -z "$out" ] && return 0
  echo "exit $rc: $out"
  return 1
}
if said="$(verify_quiet "$work/kvpaxosd.service")"; then
  pass "systemd-analyze verify says nothing about kvpaxosd.service"
else
  fail "systemd-analyze verify kvpaxosd.service: $said"
fi
# The check can fail: a misspelt directive is only a warning, exit status 0.
sed 's/^ProtectSystem=/ProtectSytem=/' "$work/kvpaxosd.service" >"$work/typo.service"
said="$(verify_quiet "$work/typo.service")"
if grep -q "Unknown key 'ProtectSytem'" <<<"$said"; then
  pass "a misspelt directive is caught"
else
  fail "systemd-analyze verify did not object to ProtectSytem= (a typo): $said"
fi

exposure="$(systemd-analyze security --offline=yes "$work/kvpaxosd.service" 2>&1 | tail -n 1)"
if systemd-analyze security --offline=yes --threshold=15 "$work/kvpaxosd.service" >/dev/null 2>&1; then
  pass "exposure at most 1.5: $exposure"
else
  fail "exposure above 1.5 (hardening was lost?): $exposure"
fi

# Every KVPAXOS_ variable of the example, set or commented out, is a flag.
help="$("$KVPAXOSD" --help)"
vars="$(grep -oE '^#?KVPAXOS_[A-Z_]+=' "$example" | tr -d '#=' | sort -u)"
[ -n "$vars" ] || fail "no KVPAXOS_ variables in $example"
for v in $vars; do
  flag="--$(echo "${v#KVPAXOS_}" | tr 'A-Z_' 'a-z-')"
  grep -qE -- "(^| )$flag( |,|=|\$)" <<<"$help" || fail "$example: $v names no kvpaxosd flag ($flag)"
done
pass "$(echo "$vars" | wc -l) variables of the example name kvpaxosd flags"

# The example's lines, as systemd reads them (no shell), reach kvpaxosd.
mapfile -t lines < <(grep -E '^KVPAXOS_[A-Z_]+=' "$example")
dumped="$(env -i "${lines[@]}" "$KVPAXOSD" --dump-config 2>&1)"
for line in "${lines[@]}"; do
  key="$(echo "${line%%=*}" | sed 's/^KVPAXOS_//' | tr 'A-Z_' 'a-z-')"
  grep -qx "$key=\"${line#*=}\"" <<<"$dumped" || fail "$line did not reach kvpaxosd: $(grep "^$key=" <<<"$dumped")"
done
pass "the example's ${#lines[@]} variables reach kvpaxosd --dump-config"

# KVPAXOS_CONFIG_FILE, as the example's last line suggests.
env -i "${lines[@]}" "$KVPAXOSD" --dump-config >"$work/kvpaxosd.toml" 2>&1
from_file="$(env -i KVPAXOS_CONFIG_FILE="$work/kvpaxosd.toml" "$KVPAXOSD" --dump-config 2>&1)"
[ "$from_file" = "$(cat "$work/kvpaxosd.toml")" ] && pass "KVPAXOS_CONFIG_FILE reads the file" ||
  fail "KVPAXOS_CONFIG_FILE: $(diff <(echo "$from_file") "$work/kvpaxosd.toml" | head -5)"
out="$(env -i KVPAXOS_CONFIG_FILE="$work/missing.toml" "$KVPAXOSD" --dump-config 2>&1)"
rc=$?
[ "$rc" -eq 2 ] && grep -q "KVPAXOS_CONFIG_FILE=$work/missing.toml names no readable file" <<<"$out" &&
  pass "a missing KVPAXOS_CONFIG_FILE exits 2 and says so" ||
  fail "a missing KVPAXOS_CONFIG_FILE: exit $rc: $out"

[ "$failures" -eq 0 ] || { echo "$failures failed"; exit 1; }
echo "systemd_unit: all passed"

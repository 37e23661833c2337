#!/usr/bin/env bash
# CURVE keys end to end with the shipped binaries: kvctl keygen, key files
# that pyzmq reads and writes too, a cluster that serves only keyed clients,
# the errors a misconfigured key or flag gets (one line, exit 2), and secure
# by default (no keys: loopback only, unless --insecure).
#   bash keys.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
KEYS="$WORK/keys"

# keygen: a public file anyone may read, a secret file only its owner may.
make_cluster_keys "$KEYS" n1 n2 n3
"$KVCTL" keygen alice --dir "$KEYS" >/dev/null || fail "keygen alice"
expect_eq "secret key file mode" 600 "$(stat -c %a "$KEYS/alice.key_secret")"
expect_eq "public key file mode" 644 "$(stat -c %a "$KEYS/alice.key")"
"$KVCTL" keygen alice --dir "$KEYS" >/dev/null 2>"$WORK/err"
expect_eq "keygen never overwrites a key" 1 $?

# The ZeroMQ ecosystem's format: pyzmq reads our files, we read pyzmq's.
pub=$("$PY" -c 'import sys, zmq.auth; p, s = zmq.auth.load_certificate(sys.argv[1]); print(p.decode())' \
  "$KEYS/alice.key_secret") || fail "pyzmq cannot read kvctl's key file"
expect_eq "pyzmq reads the public key kvctl wrote" "$(grep public-key "$KEYS/alice.key" | cut -d'"' -f2)" "$pub"
mkdir -p "$KEYS/clients"
"$PY" -c 'import sys, zmq.auth; zmq.auth.create_certificates(sys.argv[1], "bob")' "$KEYS/clients" \
  || fail "pyzmq create_certificates"
chmod 600 "$KEYS/clients/bob.key_secret"
mv "$KEYS/clients/bob.key_secret" "$KEYS/bob.key_secret"   # the clients dir holds public keys
pass "pyzmq wrote bob's key pair"

"$KVCTL" keygen r1 --dir "$KEYS/rotated-peer" >/dev/null || fail "keygen r1"
KEYFLAGS=(--peer-keys "$KEYS/peer" --client-key "$KEYS/port/cluster.key_secret" --client-keys "$KEYS/clients")
KVCTL_AUTH=(--server-key "$KEYS/port/cluster.key" --key "$KEYS/bob.key_secret")
start_cluster 3 "${KEYFLAGS[@]}"
ALL="${EP[1]},${EP[2]},${EP[3]}"
KB() { "$KVCTL" --timeout 10s --server-key "$KEYS/port/cluster.key" --key "$KEYS/bob.key_secret" "$@"; }

expect_eq "put with pyzmq's key for bob" OK "$(KB --endpoints "$ALL" put k v1)"
expect_eq "get with the key in the environment" v1 \
  "$(KVCTL_SERVER_KEY="$KEYS/port/cluster.key" KVCTL_KEY="$KEYS/bob.key_secret" "$KVCTL" --endpoints "${EP[2]}" get k)"
"$KVCTL" --endpoints "$ALL" --timeout 10s put k keyless >/dev/null 2>"$WORK/err"
expect_eq "a keyless kvctl exits 1" 1 $?
grep -q "requires CURVE keys" "$WORK/err" || fail "keyless kvctl is told why: $(cat "$WORK/err")"
"$KVCTL" --endpoints "$ALL" --timeout 10s --server-key "$KEYS/port/cluster.key" \
  --key "$KEYS/alice.key_secret" put k alice >/dev/null 2>"$WORK/err"
expect_eq "a key not in --client-keys exits 1" 1 $?
grep -q "refused our key" "$WORK/err" || fail "refused kvctl is told why: $(cat "$WORK/err")"
expect_eq "refused writes changed nothing" v1 "$(KB --endpoints "${EP[3]}" get k)"
"$KVCTL" --endpoints "$ALL" --server-key "$KEYS/port/cluster.key" >/dev/null 2>"$WORK/err" get k
expect_eq "--server-key without --key exits 2" 2 $?

# Rotating the cluster's client key: a node already restarted with the new
# key (here a fourth, solo node) serves a client that holds the old and the
# new public key; one that holds only the old key is told what to check.
"$KVCTL" keygen cluster2 --dir "$KEYS/port" >/dev/null || fail "keygen cluster2"
R=$(pick_base 1)
"$KVPAXOSD" --name r1 --cluster "r1=127.0.0.1:$((R + 1))" --client-addr "127.0.0.1:$((R + 101))" \
  --peer-keys "$KEYS/rotated-peer" --client-key "$KEYS/port/cluster2.key_secret" \
  --client-keys "$KEYS/clients" >"$WORK/r1.log" 2>&1 &
PIDS+=($!)
BOTH="$KEYS/port/cluster.key,$KEYS/port/cluster2.key"
for _ in $(seq 50); do
  "$KVCTL" --endpoints "127.0.0.1:$((R + 101))" --server-key "$BOTH" --key "$KEYS/bob.key_secret" \
    --timeout 1s status >/dev/null 2>&1 && break
  sleep 0.1
done
expect_eq "old and new server keys: the rotated node serves" OK "$("$KVCTL" --timeout 10s \
  --endpoints "127.0.0.1:$((R + 101)),${EP[1]}" --server-key "$BOTH" --key "$KEYS/bob.key_secret" put r v)"
expect_eq "old and new server keys: the others still serve" v1 "$("$KVCTL" --timeout 10s \
  --endpoints "${EP[1]}" --server-key "$BOTH" --key "$KEYS/bob.key_secret" get k)"
"$KVCTL" --endpoints "127.0.0.1:$((R + 101))" --timeout 5s --server-key "$KEYS/port/cluster.key" \
  --key "$KEYS/bob.key_secret" get r >/dev/null 2>"$WORK/err"
expect_eq "only the old server key: the rotated node is refused" 1 $?
grep -q -- "--server-key" "$WORK/err" || fail "a stale --server-key is named: $(cat "$WORK/err")"

# Misconfiguration: one line, exit 2, before anything binds.
one_line_exit2() {  # WHAT PATTERN kvpaxosd-args...
  local what=$1 pattern=$2; shift 2
  "$KVPAXOSD" "$@" >/dev/null 2>"$WORK/err"
  expect_eq "$what exits 2" 2 $?
  expect_eq "$what says one line" 1 "$(wc -l <"$WORK/err")"
  grep -q -- "$pattern" "$WORK/err" || fail "$what names the problem: $(cat "$WORK/err")"
}
NODE=(--name n1 --cluster "$CLUSTER" --client-addr 127.0.0.1:1)
cp -r "$KEYS/peer" "$WORK/loose"; chmod 644 "$WORK/loose/n1.key_secret"
one_line_exit2 "a secret key readable by others" "chmod 600" "${NODE[@]}" --peer-keys "$WORK/loose" \
  --client-key "$KEYS/port/cluster.key_secret"
cp -r "$KEYS/peer" "$WORK/missing"; rm "$WORK/missing/n3.key"
one_line_exit2 "a missing node key" "n3.key" "${NODE[@]}" --peer-keys "$WORK/missing" \
  --client-key "$KEYS/port/cluster.key_secret"
cp -r "$KEYS/peer" "$WORK/bad"; sed -i 's/public-key = "./public-key = "/' "$WORK/bad/n2.key"
one_line_exit2 "a malformed key" "not a 40-character Z85" "${NODE[@]}" --peer-keys "$WORK/bad" \
  --client-key "$KEYS/port/cluster.key_secret"
cp -r "$KEYS/peer" "$WORK/stray"; cp "$KEYS/alice.key" "$WORK/stray/alice.key"
one_line_exit2 "a peer key dir with a stranger's key" "names no node" "${NODE[@]}" \
  --peer-keys "$WORK/stray" --client-key "$KEYS/port/cluster.key_secret"
one_line_exit2 "a node key as the client port's key" "needs a key of its own" "${NODE[@]}" \
  --peer-keys "$KEYS/peer" --client-key "$KEYS/peer/n1.key_secret"
one_line_exit2 "--peer-keys without --client-key" "go together" "${NODE[@]}" --peer-keys "$KEYS/peer"
one_line_exit2 "--insecure with keys" "exclude each other" "${NODE[@]}" "${KEYFLAGS[@]}" --insecure
one_line_exit2 "no keys on a reachable address" "--peer-keys" --name n1 \
  --cluster n1=192.0.2.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103 --client-addr 127.0.0.1:1
one_line_exit2 "an empty --data-dir" "--data-dir is empty" "${NODE[@]}" --data-dir ""
"$KVCTL" --endpoints bogus get k >/dev/null 2>"$WORK/err"
expect_eq "kvctl --endpoints bogus exits 2" 2 $?
"$KVCTL" --endpoints "${EP[1]}" --timeout inf get k >/dev/null 2>"$WORK/err"
expect_eq "kvctl --timeout inf exits 2" 2 $?

# --insecure starts (here on loopback) and says what it gives up.
P=$(pick_base 1)
"$KVPAXOSD" --name solo --cluster "solo=127.0.0.1:$((P + 1))" --client-addr "127.0.0.1:$((P + 101))" \
  --insecure >"$WORK/insecure.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q "serving clients" "$WORK/insecure.log" && break; sleep 0.1; done
grep -q -- "--insecure: peer and client links are plain tcp" "$WORK/insecure.log" \
  || fail "--insecure warns at start: $(cat "$WORK/insecure.log")"
pass "--insecure warns at start"
echo "keys: all passed"

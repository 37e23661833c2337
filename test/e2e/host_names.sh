#!/usr/bin/env bash
# Host names in --cluster and --client-addr, as a StatefulSet's stable DNS
# names are: a keyed 3-node cluster whose every address is a name starts,
# serves kvctl at those names and restarts from its data dirs; a node binds
# what its name resolves to, or --listen-peer-addr / --listen-client-addr
# (0.0.0.0 here) apart from the name it advertises; a name that does not
# resolve, and a wildcard listen address without keys, are refused (exit 2).
#
# It runs in network and mount namespaces of its own: the only interface is
# loopback (so 0.0.0.0 reaches nothing else), and /etc/hosts is a private
# file mapping the names to 127.0.0.21-23.
#   bash host_names.sh KVPAXOSD KVCTL
set -uo pipefail

if [ -z "${KVPAXOS_HOST_NAMES_NS:-}" ]; then
  # unshare as root; as another user, in a user namespace of its own.
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(--user --map-root-user)
  KVPAXOS_HOST_NAMES_NS=1 exec unshare "${as_root[@]}" --net --mount --propagation private \
    bash "$0" "$@" || { echo "FAIL: unshare --net --mount is not available here"; exit 1; }
fi
ip link set lo up || { echo "FAIL: cannot bring up loopback in the test's network namespace"; exit 1; }
hosts="$(mktemp)"
printf '127.0.0.1 localhost\n127.0.0.21 kv-0.kv-peer.test\n127.0.0.22 kv-1.kv-peer.test\n127.0.0.23 kv-2.kv-peer.test\n' >"$hosts"
mount --bind "$hosts" /etc/hosts || { echo "FAIL: cannot bind a private /etc/hosts"; exit 1; }

source "$(dirname "$0")/lib.bash"
[ "$(getent hosts kv-1.kv-peer.test | awk '{print $1}')" = 127.0.0.22 ] ||
  fail "the private /etc/hosts does not resolve kv-1.kv-peer.test"

KEYS="$WORK/keys"
make_cluster_keys "$KEYS" kv-0 kv-1 kv-2
"$KVCTL" keygen admin --dir "$KEYS" >/dev/null || fail "keygen admin"
KVCTL_TIMEOUT=10s; export KVCTL_TIMEOUT
KEYFLAGS=(--peer-keys "$KEYS/peer" --client-key "$KEYS/port/cluster.key_secret")
K() { "$KVCTL" --server-key "$KEYS/port/cluster.key" --key "$KEYS/admin.key_secret" "$@"; }

# A network namespace of its own: no other test's ports here. Node i has
# peer port 7101+i and client port 7201+i (a wildcard bind takes the port
# on every address).
P() { echo $((7101 + $1)); }
C() { echo $((7201 + $1)); }
CLUSTER="kv-0=kv-0.kv-peer.test:$(P 0),kv-1=kv-1.kv-peer.test:$(P 1),kv-2=kv-2.kv-peer.test:$(P 2)"
ALL="kv-0.kv-peer.test:$(C 0),kv-1.kv-peer.test:$(C 1),kv-2.kv-peer.test:$(C 2)"

# kv-0 and kv-1 bind what their names resolve to; kv-2 binds every address
# (in this namespace: loopback) and advertises its name.
start_node() {  # start_node I [flags]
  local i=$1; shift
  "$KVPAXOSD" --name "kv-$i" --cluster "$CLUSTER" --client-addr "kv-$i.kv-peer.test:$(C "$i")" \
    --data-dir "$WORK/d$i" "${KEYFLAGS[@]}" "$@" >>"$WORK/kv-$i.log" 2>&1 &
  PIDS[$i]=$!
}
listen_flags() {  # the flags each node starts with, after the first start too
  [ "$1" -eq 2 ] && echo "--listen-peer-addr 0.0.0.0:$(P 2) --listen-client-addr 0.0.0.0:$(C 2)"
}
for i in 0 1 2; do
  # shellcheck disable=SC2046
  start_node "$i" --initial-cluster-state new $(listen_flags "$i")
done
wait_serving() {
  for _ in $(seq 300); do
    K --endpoints "$ALL" --timeout 1s put ready 1 >/dev/null 2>"$WORK/ready.err" && return 0
    sleep 0.1
  done
  fail "$1: $(cat "$WORK/ready.err")"
}
wait_serving "a cluster of host names did not come up"
pass "a keyed cluster whose --cluster and --client-addr are host names started"

grep -q "peers on tcp://kv-1.kv-peer.test:$(P 1) (bound tcp://127.0.0.22:$(P 1))" "$WORK/kv-1.log" ||
  fail "kv-1 says where it bound: $(grep serving "$WORK/kv-1.log")"
grep -q "clients on tcp://kv-2.kv-peer.test:$(C 2) (bound tcp://0.0.0.0:$(C 2))" "$WORK/kv-2.log" ||
  fail "kv-2 says it bound --listen-client-addr: $(grep serving "$WORK/kv-2.log")"
pass "each node logs the name it advertises and the address it bound"

expect_eq "put at a host name" OK "$(K --endpoints kv-0.kv-peer.test:$(C 0) put k v1)"
expect_eq "append at another" OK "$(K --endpoints kv-2.kv-peer.test:$(C 2) append k +2)"
expect_eq "get at the third" v1+2 "$(K --endpoints kv-1.kv-peer.test:$(C 1) get k)"
# kv-2 listens on every address: it also answers at one its name is not.
expect_eq "kv-2 answers at 127.0.0.1 (it bound 0.0.0.0)" v1+2 "$(K --endpoints 127.0.0.1:$(C 2) get k)"
expect_eq "kv-0 answers at the address its name resolves to" v1+2 \
  "$(K --endpoints 127.0.0.21:$(C 0) get k)"
expect_eq "status reaches three voters at their names" 3 \
  "$(K --endpoints "$ALL" status 2>/dev/null | grep -cE '^kv-[012]\.kv-peer\.test:720[123] +kv-[012] +[012] +voter +yes')"

# A restart from the data dir: names again, nothing else changes.
kill -TERM "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null
expect_eq "put with kv-1 stopped" OK "$(K --endpoints "$ALL" put k2 w)"
start_node 1
wait_serving "kv-1 did not come back"
for _ in $(seq 100); do
  [ "$(K --endpoints kv-1.kv-peer.test:$(C 1) get k2 2>/dev/null)" = w ] && break
  sleep 0.1
done
expect_eq "kv-1 restarted at its name and caught up" w "$(K --endpoints kv-1.kv-peer.test:$(C 1) get k2)"

# Refusals, before anything is bound or written.
out=$("$KVPAXOSD" --name x --cluster "x=nowhere.kv-peer.test:7301" --client-addr 127.0.0.1:7302 \
  --initial-cluster-state new --data-dir "$WORK/dx" 2>&1)
expect_eq "a name that does not resolve exits 2" 2 $?
grep -q "nowhere.kv-peer.test.*does not resolve.*--listen-peer-addr" <<<"$out" ||
  fail "the refusal names the host and the way out: $out"
[ ! -e "$WORK/dx/kvpaxos-node" ] || fail "a refused start wrote a marker"
out=$("$KVPAXOSD" --name x --cluster "x=kv-0.kv-peer.test:7311" --client-addr 127.0.0.1:7312 \
  --listen-peer-addr 0.0.0.0:7311 2>&1)
expect_eq "--listen-peer-addr 0.0.0.0 without keys exits 2" 2 $?
grep -q "no keys, but 0.0.0.0:7311 can be reached" <<<"$out" || fail "and says why: $out"
out=$("$KVPAXOSD" --name x --cluster "x=127.0.0.1:7321" --client-addr 127.0.0.1:7322 \
  --listen-client-addr 127.0.0.1:99999 2>&1)
expect_eq "a bad --listen-client-addr exits 2" 2 $?
grep -q -- "--listen-client-addr .*port" <<<"$out" || fail "and names the flag: $out"
expect_eq "the cluster still serves" v1+2 "$(K --endpoints "$ALL" get k)"
echo "host_names: all passed"

#!/usr/bin/env bash
# Keys follow the configuration (issue 14, item 6), with real processes on a
# cluster that runs with CURVE keys on every link:
#   0. membership changes need an admin key (--admin-keys): eve, a client
#      key that is not one, gets permission_denied and may still list;
#   1. member add without --peer-key is refused before anything changes;
#   2. n4 is added with --peer-key n4.key and started with its own pair and
#      the first members' public keys; no file is copied to n1..n3, yet they
#      let n4 in; promoted, it serves puts and gets;
#   3. n4 is re-keyed (member update --peer-key) and restarted with its new
#      pair: it serves again, and its old key is refused on a peer port;
#   4. n2 is removed: it exits 4, told by a majority of the voters that
#      remain, whose peer ports still let its key in for that notice alone
#      (its key, still in every node's --peer-keys, opens nothing else).
#   bash keyed_membership.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3

BASE=$(pick_base 4)
peer() { echo "127.0.0.1:$((BASE + $1))"; }
client() { echo "127.0.0.1:$((BASE + 100 + $1))"; }
declare -A PID
KEYS="$WORK/keys"
make_cluster_keys "$KEYS" n1 n2 n3
"$KVCTL" keygen bob --dir "$KEYS/bob" >/dev/null || fail "keygen bob"
"$KVCTL" keygen eve --dir "$KEYS/eve" >/dev/null || fail "keygen eve"
mkdir -p "$KEYS/admins" && cp "$KEYS/bob/bob.key" "$KEYS/admins/"  # bob is the operator
PORT_KEYS=(--client-key "$KEYS/port/cluster.key_secret" --admin-keys "$KEYS/admins")
ENDPOINTS="$(client 1),$(client 2),$(client 3)"
K() {
  "$KVCTL" --endpoints "$ENDPOINTS" --timeout 10s --server-key "$KEYS/port/cluster.key" \
    --key "$KEYS/bob/bob.key_secret" "$@"
}

start() {  # start I PEER_KEY_DIR FLAGS...
  local i=$1 dir=$2; shift 2
  "$KVPAXOSD" --name "n$i" --client-addr "$(client "$i")" --data-dir "$WORK/d$i" \
    --peer-keys "$dir" "${PORT_KEYS[@]}" "$@" >>"$WORK/n$i.log" 2>&1 &
  PID[$i]=$!
  PIDS+=($!)
}
# on I CMD...: a kvctl command against nI alone, retried for 30 s.
on() {
  local i=$1 out; shift
  for _ in $(seq 60); do
    out=$("$KVCTL" --endpoints "$(client "$i")" --timeout 2s --server-key "$KEYS/port/cluster.key" \
      --key "$KEYS/bob/bob.key_secret" "$@" 2>&1) && { echo "$out"; return 0; }
    sleep 0.5
  done
  echo "$out"
  return 1
}
# refused_on_peer_port I PUBLIC SECRET: a CURVE connection with that pair to
# nI's peer port is refused by its ZAP handler (which logs the key).
refused_on_peer_port() {  # ... [TRIES, default 20]
  local i=$1 pub=$2 sec=$3 tries=${4:-20}
  for _ in $(seq "$tries"); do
    "$PY" - "$(peer "$i")" "$KEYS/peer/n$i.key" "$pub" "$sec" <<'EOF'
import sys, time, zmq, zmq.auth
addr, server, pub, sec = sys.argv[1:]
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.linger = 0
s.curve_serverkey = zmq.auth.load_certificate(server)[0]
s.curve_publickey, s.curve_secretkey = zmq.auth.load_certificate(sec)
s.connect("tcp://" + addr)
s.send(b"hello")
time.sleep(0.3)
ctx.destroy(linger=0)
EOF
    local key
    key=$("$PY" -c 'import sys, zmq.auth; print(zmq.auth.load_certificate(sys.argv[1])[0].decode())' "$pub")
    grep -qF "unknown key $key refused on the peer port" "$WORK/n$i.log" && return 0
    sleep 0.5
  done
  return 1
}

CLUSTER="n1=$(peer 1),n2=$(peer 2),n3=$(peer 3)"
for i in 1 2 3; do start "$i" "$KEYS/peer" --cluster "$CLUSTER" --initial-cluster-state new; done
for i in 1 2 3; do on "$i" status >/dev/null || fail "n$i does not serve"; done
expect_eq "a put on the keyed cluster" OK "$(K put k v1)"

# ---- 0. only an admin key changes the membership
E() {
  "$KVCTL" --endpoints "$ENDPOINTS" --timeout 10s --server-key "$KEYS/port/cluster.key" \
    --key "$KEYS/eve/eve.key_secret" "$@"
}
expect_eq "eve, a client but no admin, may put" OK "$(E put k-eve v)"
out=$(E member add n4 --peer-addr "$(peer 4)" --client-addr "$(client 4)" \
  --peer-key "$KEYS/bob/bob.key" 2>&1)
expect_eq "eve's member add exits 1" 1 $?
expect_eq "and says it needs an admin key" 1 "$(grep -c 'needs an admin key' <<<"$out")"
out=$(E member remove n3 --force 2>&1)
expect_eq "eve's member remove exits 1" 1 $?
expect_eq "and says it needs an admin key" 1 "$(grep -c 'needs an admin key' <<<"$out")"
expect_eq "eve may list the members" 3 "$(E member list | grep -c ' voter ')"
expect_eq "nothing changed" 3 "$(K member list | grep -c ' voter ')"

# ---- 1. no key, no member
out=$(K member add n4 --peer-addr "$(peer 4)" --client-addr "$(client 4)" 2>&1)
expect_eq "member add without --peer-key exits 2" 2 $?
expect_eq "and says what to give" 1 "$(grep -c 'give --peer-key n4.key' <<<"$out")"
expect_eq "no member was added" 0 "$(K member list | grep -c ' n4 ')"

# ---- 2. add n4 with its key: no file copied to n1..n3
"$KVCTL" keygen n4 --dir "$KEYS/n4" >/dev/null || fail "keygen n4"
for i in 1 2 3; do cp "$KEYS/peer/n$i.key" "$KEYS/n4/"; done
[ ! -e "$KEYS/peer/n4.key" ] || fail "n4.key must not be in the first members' key dir"
out=$(K member add n4 --peer-addr "$(peer 4)" --client-addr "$(client 4)" \
  --peer-key "$KEYS/n4/n4.key") || fail "member add n4 --peer-key: $out"
line=$(grep -A1 '^start it with:' <<<"$out" | tail -n 1)
grep -q -- '--peer-keys KEYDIR --client-key CLIENT.key_secret --admin-keys ADMINDIR' <<<"$line" ||
  fail "the start line names the key flags: $out"
read -ra args <<<"$line"
for k in "${!args[@]}"; do
  case "${args[$k]}" in
    DIR) args[$k]="$WORK/d4" ;;
    KEYDIR) args[$k]="$KEYS/n4" ;;
    CLIENT.key_secret) args[$k]="$KEYS/port/cluster.key_secret" ;;
    ADMINDIR) args[$k]="$KEYS/admins" ;;
  esac
done
"$KVPAXOSD" "${args[@]:1}" >>"$WORK/n4.log" 2>&1 &
PID[4]=$!
PIDS+=($!)
ENDPOINTS+=",$(client 4)"
promote_when_ready promote n4 >/dev/null
pass "n4 caught up over CURVE links with the key from the configuration and was promoted"
expect_eq "a put through n4" OK "$(on 4 put k4 from-n4)"
expect_eq "n1 reads it" from-n4 "$(on 1 get k4)"

# ---- 3. re-key n4: its new key from the configuration, the old one refused
cp -r "$KEYS/n4" "$KEYS/n4-old"
rm "$KEYS/n4/n4.key" "$KEYS/n4/n4.key_secret"
"$KVCTL" keygen n4 --dir "$KEYS/n4" >/dev/null || fail "keygen n4 (new pair)"
out=$(K member update n4 --peer-key "$KEYS/n4/n4.key" 2>&1) || fail "member update n4 --peer-key: $out"
kill -TERM "${PID[4]}"
wait_exit 4
"$KVPAXOSD" "${args[@]:1}" >>"$WORK/n4.log" 2>&1 &  # the same line: KEYDIR has the new pair
PID[4]=$!
PIDS+=($!)
expect_eq "n4 with its new pair serves a put" OK "$(on 4 put k5 rekeyed)"
expect_eq "n2 reads it" rekeyed "$(on 2 get k5)"
refused_on_peer_port 1 "$KEYS/n4-old/n4.key" "$KEYS/n4-old/n4.key_secret" ||
  fail "n4's old key is still let in on n1's peer port"
pass "n4's old key is refused on n1's peer port"

# The check can tell: n2's key, while n2 is a member, is let in.
! refused_on_peer_port 1 "$KEYS/peer/n2.key" "$KEYS/peer/n2.key_secret" 3 ||
  fail "n2's key was refused on n1's peer port while n2 is a member"
pass "a member's key is let in on a peer port (the check below can fail)"

# ---- 4. remove n2: told with its key, which opens nothing else, though its file stays everywhere
out=$(K member remove n2 2>&1) || fail "member remove n2: $out"
wait_exit 2
expect_eq "n2 exits with the removed status" 4 "$CODE"
told=0
for i in 1 3 4; do
  grep -F "a removed member still calls: told it it was removed" "$WORK/n$i.log" |
    grep -qF "peer=n2" && told=$((told + 1))
done
[ "$told" -ge 2 ] || fail "n2 exited, but only $told of n1, n3, n4 logged telling it it was removed"
pass "$told of the 3 voters that remain told n2, with its key, that it was removed"
refused_on_peer_port 1 "$KEYS/n4-old/n4.key" "$KEYS/n4-old/n4.key_secret" ||
  fail "n4's old key is let in on n1's peer port once n2 is a removed member"
pass "only the removed member's own key gets the notice: n4's old key is still refused"
expect_eq "the three that remain serve" OK "$(on 3 put k6 after)"
expect_eq "n4 reads it" after "$(on 4 get k6)"

# ---- 5. a removed member that was away hears it on a fresh connection
# n3 is stopped (SIGSTOP) while it is removed, and n1 restarts: when n3
# comes back, its link to n1 is a new CURVE handshake, and n1 (which may
# hold only the configuration after the removal) must still let n3's key
# in, to tell it. The voters after the removal are n1 and n4: both must.
kill -STOP "${PID[3]}"
out=$(K member remove n3 --force 2>&1) || fail "member remove n3 (stopped): $out"
expect_eq "n1 and n4 serve without n3" OK "$(on 1 put k7 without-n3)"
kill -TERM "${PID[1]}"
wait_exit 1
expect_eq "n1 stops cleanly" 0 "$CODE"
start 1 "$KEYS/peer" --cluster "$CLUSTER"
expect_eq "n1 serves again" without-n3 "$(on 1 get k7)"
kill -CONT "${PID[3]}"
wait_exit 3
expect_eq "n3, back, learns it was removed and exits with the removed status" 4 "$CODE"
grep -F "a removed member still calls: told it it was removed" "$WORK/n1.log" | grep -qF "peer=n3" ||
  fail "the restarted n1 did not tell n3"
pass "the restarted n1 told n3, on a connection it accepted after the removal"
expect_eq "n1 and n4 serve" OK "$(on 4 put k8 end)"

// What kvctl prints for the data model's replies, in etcdctl v3's shapes:
// text (get: key and value lines; del: the count; txn: SUCCESS or FAILURE,
// then a blank line and each op's result) and JSON (one object). Pure
// functions of a reply; each returns whole lines, newline included.
//
// JSON strings are the raw bytes, escaped: a byte outside printable ASCII is
// \u00XX of that byte, so keys and values are bytes, not base64 as etcd's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cmd/member_health.hpp"
#include "cmd/txn_grammar.hpp"
#include "messages/messages.hpp"

namespace kvpaxos {

std::string json_string(const std::string& bytes);
// What an operator typed: tcp://127.0.0.1:7101 -> 127.0.0.1:7101.
std::string address_of(const std::string& endpoint);

// get: every key then its value (flags kRangeKeysOnly: the keys alone,
// kRangeCountOnly: the count alone).
std::string range_text(const std::vector<KeyValue>& kvs, std::uint64_t count, std::uint8_t flags);
// {"revision":R,"count":N,"more":b,"kvs":[...]}; a single-key get (`single`)
// also has the top-level "key" and "value" that kvctl get -w json always
// printed ("" when the key is absent).
std::string range_json(const OpResult& r, const std::string* single);

// SUCCESS or FAILURE, then each op's result after a blank line: put and
// append OK, get as range_text, del the count.
std::string txn_text(const TxnSpec& txn, const OpResult& r);
// {"succeeded":b,"revision":R,"responses":[{"op":"put"}, {"op":"get",
// "count":N,"more":b,"kvs":[...]}, {"op":"del","deleted":N}, ...]}
std::string txn_json(const OpResult& r);

// watch: PUT then the key and value lines, or DELETE then the key, as
// etcdctl watch prints them; json: one object a line,
// {"type":"PUT","key":..,"value":..,"create_revision":..,"mod_revision":..,"version":..}.
std::string event_text(const WatchEvent& e);
std::string event_json(const WatchEvent& e);

// kvctl member list: "epoch E (alpha A)" and, while a change is pending,
// the instance it governs from; then a table of id, name, role, REACHABLE
// (yes/no: it answered kvctl's status request), APPLIED (its applied_below),
// LAG (the furthest applied_below among the reachable members minus its
// own; "-" when unreachable), peer and client address (HOST:PORT; a member
// with no client address in the configuration shows where it answered), in
// id order. json: {"epoch","alpha","pending_from","members":[{"id","name",
// "role","peer_addr","client_addr","reachable","applied","lag"}]} (applied
// and lag null when unreachable).
std::string member_list_text(const MemberResult& r, const ClusterHealth& health);
std::string member_list_json(const MemberResult& r, const ClusterHealth& health);
// kvctl status: a header, then a line per endpoint (its name, member id and
// role, REACHABLE, APPLIED the last applied instance, MIN, MAX, keys,
// sessions, snapshot, sizes, revision, watches; "-" where the node did not
// answer, `reply` null). json: one object per endpoint, "error" when it did
// not answer.
std::string status_text_header();
std::string status_text_line(const std::string& endpoint, const StatusReply* reply,
                             const StatusIdentity& who);
std::string status_json(const std::string& endpoint, const StatusReply* reply,
                        const std::string& error, const StatusIdentity& who);
// 512B, 1.5KiB, 3.9MiB.
std::string human_bytes(std::uint64_t bytes);

// After a change: "<what> NAME (id N): epoch E, in force from instance F";
// json: {"id","epoch","effective_from"}.
std::string member_change_text(const std::string& what, const MemberResult& r,
                               const Config* before = nullptr);
std::string member_change_json(const MemberResult& r);
// The kvpaxosd command that starts member `id` of r.config (a learner just
// added): its name, every member's peer address, its client address, and
// with `keyed` the key flags and what goes into --peer-keys.
std::string start_command(const MemberResult& r, NodeId id, bool keyed = false);

}  // namespace kvpaxos

// Every message kvpaxos sends: between nodes (Paxos), between the actors of one
// node (inproc), and between clients and the front door. Plain structs with
// MSGPACK_DEFINE, and the one table of their wire tags (Messages, at the end);
// the encode/decode live in codec.hpp.
//
// Field order is the wire order (msgpack arrays). Append new fields at the end
// and bump kProtocolVersion when an old peer could misread a message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "messages/membership.hpp"
#include "messages/types.hpp"

namespace kvpaxos {

// ---------------------------------------------------------------- peer (Paxos)

// Phase 1a: proposer -> every acceptor.
struct Prepare {
  InstanceId instance = 0;
  Ballot ballot;
  MSGPACK_DEFINE(instance, ballot)
};

// Phase 1b: acceptor -> proposer. When ok, the acceptor promised `ballot` and
// reports what it has accepted (if anything). When !ok, `promised` is the
// higher ballot it already promised, so the proposer can jump past it.
// `forgotten` means the instance is below the acceptor's forget point: it was
// decided and applied everywhere; the proposer should stop.
struct Promise {
  InstanceId instance = 0;
  Ballot ballot;
  bool ok = false;
  Ballot promised;
  Ballot accepted_ballot;  // is_none() when nothing accepted
  std::string accepted_value;
  bool forgotten = false;
  MSGPACK_DEFINE(instance, ballot, ok, promised, accepted_ballot, accepted_value, forgotten)
};

// Phase 2a: proposer -> every acceptor.
struct Accept {
  InstanceId instance = 0;
  Ballot ballot;
  std::string value;
  MSGPACK_DEFINE(instance, ballot, value)
};

// Phase 2b: acceptor -> proposer.
struct Accepted {
  InstanceId instance = 0;
  Ballot ballot;
  bool ok = false;
  Ballot promised;
  bool forgotten = false;
  MSGPACK_DEFINE(instance, ballot, ok, promised, forgotten)
};

// A chosen value: proposer -> every learner once a majority accepted; also
// learner -> learner in answer to a CatchUpRequest.
struct Decided {
  InstanceId instance = 0;
  std::string value;
  MSGPACK_DEFINE(instance, value)
};

// learner -> learner: "send me these instances if you know them decided".
// Lists instances rather than a range so that one instance nobody decided
// does not hide the decided ones after it.
struct CatchUpRequest {
  std::vector<InstanceId> instances;
  MSGPACK_DEFINE(instances)
};

// peer_link -> peer_link when there was no other traffic for a while; it exists
// to carry the piggybacked progress (Done, max decided) in its header.
struct Heartbeat {
  MSGPACK_DEFINE()
};

// applier -> a peer's applier: send me your snapshot from `offset`. With
// instance == 0 any snapshot will do (the start of a transfer); otherwise the
// chunk must come from that snapshot, or the transfer starts over.
struct SnapshotRequest {
  InstanceId instance = 0;
  std::uint64_t offset = 0;
  MSGPACK_DEFINE(instance, offset)
};

// One piece of a snapshot covering [0, instance). `crc` is the crc32c of the
// whole snapshot, checked once every chunk has arrived.
struct SnapshotChunk {
  InstanceId instance = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t offset = 0;
  std::uint32_t crc = 0;
  std::string data;
  MSGPACK_DEFINE(instance, total_bytes, offset, crc, data)
};

// A node rebuilding its lost data dir (kvpaxosd --join) -> a peer's acceptor
// and proposer: "what is the highest instance and ballot round you know of?"
struct JoinQuery {
  MSGPACK_DEFINE()
};

// acceptor or proposer -> the joining node. No instance at or above
// `instance_bound` has been seen by the answering actor (acceptor: promised,
// accepted or forgotten; proposer: started), and `max_round` is the highest
// ballot round it has promised or seen. `repairing`: this acceptor was itself
// rebuilt and the log below its vote floor is not yet decided everywhere; a
// second node must not be rebuilt now (with both abstaining there, an
// undecided instance below both floors could never be decided).
struct JoinInfo {
  InstanceId instance_bound = 0;
  std::uint64_t max_round = 0;
  bool repairing = false;
  MSGPACK_DEFINE(instance_bound, max_round, repairing)
};

// applier -> the leader's applier: client ops (encoded KvOps) for it to put
// in its next batch. The sending node keeps the clients' requests and answers
// them when the ops are applied there, or proposes them itself if they are
// not applied within a timeout (the leader may be gone).
struct ForwardOps {
  std::vector<std::string> ops;
  MSGPACK_DEFINE(ops)
};

// A graceful stop (kvpaxosd on SIGTERM): the node's own control -> its
// applier ("stop now": `below` unused), then that applier -> every other
// member's applier: "I propose nothing at or above `below` from now on".
// The others stop counting it as the leader at once (the lead goes to the
// lowest-id voter still serving) and send the ops they forwarded to it to
// that voter, so a rolling restart costs no forward timeout. A batch it
// authors at or above `below` means it is back (restarted): it may lead again.
struct StepDown {
  InstanceId below = 0;
  MSGPACK_DEFINE(below)
};

// Multi-Paxos phase 1a: proposer -> every acceptor. "Promise `ballot` for
// every instance at or above `from`." A majority of these promises lets the
// proposer run phase 2 alone in any instance >= from until it is rejected.
// `decided`: instances >= from the proposer knows are decided; their values
// need not come back (they can be large, and a campaign may be retried).
struct PrepareFrom {
  InstanceId from = 0;
  Ballot ballot;
  std::vector<InstanceId> decided;
  MSGPACK_DEFINE(from, ballot, decided)
};

// One accepted value an acceptor reports in a PromiseFrom.
struct AcceptedValue {
  InstanceId instance = 0;
  Ballot ballot;
  std::string value;
  MSGPACK_DEFINE(instance, ballot, value)
};

// Multi-Paxos phase 1b: acceptor -> proposer. When ok, the acceptor promised
// `ballot` for every instance >= from and `accepted` lists every value it has
// accepted there, except below `forgotten_below`: those instances it no
// longer holds (decided and applied by a majority), so this promise says
// nothing about them. When !ok, `promised` is a ballot at least as high that
// it holds (for the range or for one instance in it), or `too_large` says the
// answer would not fit in a message: the range starts too far back.
struct PromiseFrom {
  InstanceId from = 0;
  Ballot ballot;
  bool ok = false;
  Ballot promised;
  std::vector<AcceptedValue> accepted;
  InstanceId forgotten_below = 0;
  bool too_large = false;
  MSGPACK_DEFINE(from, ballot, ok, promised, accepted, forgotten_below, too_large)
};

// ------------------------------------------------------ inside one node (inproc)
// learner -> applier: the log below `below` is forgotten by a majority and
// this node has not applied it; fetch a snapshot from `peer`.
struct SnapshotNeeded {
  InstanceId below = 0;
  NodeId peer = 0;
  MSGPACK_DEFINE(below, peer)
};

// applier -> learner: a snapshot covering [0, instance) was installed;
// deliver from there.
struct SnapshotInstalled {
  InstanceId instance = 0;
  MSGPACK_DEFINE(instance)
};


// applier / control -> proposer: get `value` (or whatever was already chosen)
// decided in `instance`.
// known_below (from this node's applier, 0: none): the configurations it
// last sent (ConfigUpdate) are known up to there now. The window moves with
// every applied batch; the configurations themselves seldom change, and a
// whole ConfigUpdate per batch cost 6-8% of the throughput (bench/ab).
struct Propose {
  InstanceId instance = 0;
  std::string value;
  InstanceId known_below = 0;
  MSGPACK_DEFINE(instance, value, known_below)
};

// learner -> proposer: `instance` is decided; stop working on it.
struct Learned {
  InstanceId instance = 0;
  MSGPACK_DEFINE(instance)
};

// learner -> applier: the decided value of `instance`, strictly in order.
struct Apply {
  InstanceId instance = 0;
  std::string value;
  MSGPACK_DEFINE(instance, value)
};

// applier / control -> learner: this node is done with every instance below
// `done_below` (the seed's Done(done_below - 1)).
struct LocalDone {
  InstanceId done_below = 0;
  MSGPACK_DEFINE(done_below)
};

// snapshot writer -> applier (inproc): the snapshot of every instance below
// `instance` is on disk, or, when `error` says why, could not be written.
struct SnapshotSaved {
  InstanceId instance = 0;
  std::string error;
  MSGPACK_DEFINE(instance, error)
};

// learner -> acceptor, proposer: every node is done below `instance`; forget it.
struct ForgetBelow {
  InstanceId instance = 0;
  MSGPACK_DEFINE(instance)
};

// learner -> peer_link: what to piggyback on outgoing peer traffic.
// peer_link -> learner (PeerProgress): what a peer piggybacked.
struct LocalProgress {
  InstanceId done_below = 0;
  InstanceId decided_below = 0;  // one past the highest decided instance known
  InstanceId forget_below = 0;   // a node behind a peer's forget point needs a snapshot
  MSGPACK_DEFINE(done_below, decided_below, forget_below)
};
struct PeerProgress {
  NodeId node = 0;
  InstanceId done_below = 0;
  InstanceId decided_below = 0;
  InstanceId forget_below = 0;
  MSGPACK_DEFINE(node, done_below, decided_below, forget_below)
};

// learner -> applier and control: the node's view of the log.
// forget_below is the seed's Min(); decided_below - 1 is the highest decided.
struct LearnerProgress {
  InstanceId forget_below = 0;
  InstanceId decided_below = 0;
  MSGPACK_DEFINE(forget_below, decided_below)
};

// control -> learner, and the answer: the seed's Status(seq).
enum class InstanceState : std::uint8_t { pending = 0, decided = 1, forgotten = 2 };
struct InstanceQuery {
  std::uint64_t token = 0;
  InstanceId instance = 0;
  MSGPACK_DEFINE(token, instance)
};
struct InstanceReport {
  std::uint64_t token = 0;
  InstanceId instance = 0;
  InstanceState state = InstanceState::pending;
  std::string value;
  InstanceId forget_below = 0;
  InstanceId decided_below = 0;
  MSGPACK_DEFINE(token, instance, state, value, forget_below, decided_below)
};

// applier -> acceptor, and the answer: how far this node's acceptor holds an
// accepted value (the highest such instance + 1; 0: none). An idle applier
// asks it: a value accepted above what the learner has decided may have been
// chosen with its Decided lost (every node that learned it gone), and only a
// new proposal there brings it back (see Applier::fill_holes).
struct AcceptedQuery {
  MSGPACK_DEFINE()
};
struct AcceptedBound {
  InstanceId accepted_below = 0;
  MSGPACK_DEFINE(accepted_below)
};

// ----------------------------------------------------------------- client wire

inline constexpr std::uint8_t kProtocolVersion = 1;

// delete_range, range and txn were added later (docs/protocol.md, "Data
// model"); a node that predates them answers bad_request ("op").
// member (added with membership change): ClientRequest.member, a change of
// the configuration (or a read of it) through the log.
enum class OpKind : std::uint8_t {
  get = 1, put = 2, append = 3, delete_range = 4, range = 5, txn = 6, member = 7
};

// range_end, as etcd has it: empty means the single key `key`; "\0" means
// every key >= key; otherwise the keys in [key, range_end). prefix_end(p)
// gives the range_end of prefix p.
inline constexpr std::uint8_t kRangeKeysOnly = 1;   // the keys and revisions, no values
inline constexpr std::uint8_t kRangeCountOnly = 2;  // only how many keys are in range

// A key's state as a read returns it. Revisions count applied changes
// store-wide (docs/protocol.md, "Revisions"); version counts writes to this
// key since it was created (1 on creation); a deleted key is absent.
struct KeyValue {
  std::string key;
  std::string value;
  std::uint64_t create_revision = 0;
  std::uint64_t mod_revision = 0;
  std::uint64_t version = 0;
  MSGPACK_DEFINE(key, value, create_revision, mod_revision, version)
  bool operator==(const KeyValue&) const = default;
};

// A transaction's test of one key. An absent key has value "", version 0,
// create_revision 0 and mod_revision 0, so version = 0 is "does not exist".
enum class CompareTarget : std::uint8_t { value = 0, version = 1, create_revision = 2, mod_revision = 3 };
enum class CompareOp : std::uint8_t { equal = 0, not_equal = 1, less = 2, greater = 3 };
struct Compare {
  CompareTarget target = CompareTarget::value;
  CompareOp op = CompareOp::equal;
  std::string key;
  std::string value;         // compared with target value (bytewise)
  std::uint64_t number = 0;  // compared with the other targets
  MSGPACK_DEFINE(target, op, key, value, number)
};

// One op of a transaction's branch: get, put, append, delete_range or range,
// with the same fields as a ClientRequest's.
struct RequestOp {
  OpKind op = OpKind::get;
  std::string key;
  std::string value;
  std::string range_end;
  std::uint64_t limit = 0;
  std::uint8_t flags = 0;
  MSGPACK_DEFINE(op, key, value, range_end, limit, flags)
};

// What one op of a transaction gave: get's value; range's keys, `more` and
// count; delete_range's count of deleted keys. Nothing for put and append.
struct OpResponse {
  OpKind op = OpKind::get;
  std::string value;
  std::vector<KeyValue> kvs;
  bool more = false;
  std::uint64_t count = 0;
  MSGPACK_DEFINE(op, value, kvs, more, count)
  bool operator==(const OpResponse&) const = default;
};

// Client -> front door. `seq` numbers the client's requests 1, 2, 3, ...; a
// retry keeps its seq. `ack` is the highest seq whose reply the client has
// received, so nodes can drop the reply they kept for retries. The fields
// after `value` were added later (zero/empty for get, put and append).
struct ClientRequest {
  ClientId client_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t ack = 0;
  OpKind op = OpKind::get;
  std::string key;
  std::string value;
  std::string range_end;            // delete_range, range
  std::uint64_t limit = 0;          // range: at most this many keys (0: no limit)
  std::uint8_t flags = 0;           // range: kRangeKeysOnly, kRangeCountOnly
  std::vector<Compare> compares;    // txn: all must hold for `success` to run
  std::vector<RequestOp> success;   // txn
  std::vector<RequestOp> failure;   // txn
  MemberChange member;              // member (added with membership change)
  MSGPACK_DEFINE(client_id, seq, ack, op, key, value, range_end, limit, flags, compares, success,
                 failure, member)
};

enum class ReplyCode : std::uint8_t {
  ok = 0,
  bad_request = 1,           // malformed, oversized or invalid; nothing changed
  unsupported_version = 2,   // protocol_version not spoken by this node
  stale_request = 3,         // seq already executed and acknowledged
  fault_injection_disabled = 4,
  unknown_node = 5,          // fault reach named a node not in the cluster
  shutting_down = 6,         // the node is stopping (StepDown): send the same request elsewhere
  // Added later. An old client reports ErrorReply{overloaded} as a refusal,
  // and cannot decode a ClientReply with session_expired (out of its enum
  // range): it waits, fails over and ends with an unknown outcome.
  overloaded = 7,       // too many bytes in flight; nothing ran; retry later, same seq
  session_expired = 8,  // no session for this client (evicted) and seq > 1, or an ack the
                        // session never gave: this copy did not run, another one may have
  // Added with backup: the request needs an admin key (kvpaxosd --admin-keys).
  permission_denied = 9,
};
const char* to_string(ReplyCode c);

// What an executed op produced, kept by its session for retries until the
// client acks it, and sent as the ClientReply's fields of the same names.
struct OpResult {
  std::string value;          // get: the value ("" when the key is absent)
  std::uint64_t revision = 0; // the store's revision after the op (reads: read at)
  std::vector<KeyValue> kvs;  // range
  bool more = false;          // range: keys past the limit or the size bound follow
  std::uint64_t count = 0;    // range: keys in range; delete_range: keys deleted
  bool succeeded = false;     // txn: the compares held and `success` ran
  std::vector<OpResponse> responses;  // txn: one per op of the branch that ran
  MemberResult member;        // member (added with membership change)
  MSGPACK_DEFINE(value, revision, kvs, more, count, succeeded, responses, member)
  bool operator==(const OpResult&) const = default;
};

// The fields after `error` were added later; an old client ignores them.
struct ClientReply {
  ClientId client_id = 0;
  std::uint64_t seq = 0;
  ReplyCode code = ReplyCode::ok;
  std::string value;  // Get's result ("" when the key is absent)
  std::string error;  // human-readable when code != ok
  std::uint64_t revision = 0;
  std::vector<KeyValue> kvs;
  bool more = false;
  std::uint64_t count = 0;
  bool succeeded = false;
  std::vector<OpResponse> responses;
  MemberResult member;  // added with membership change
  MSGPACK_DEFINE(client_id, seq, code, value, error, revision, kvs, more, count, succeeded,
                 responses, member)

  static ClientReply ok(ClientId client, std::uint64_t seq, const OpResult& r) {
    return {client, seq, ReplyCode::ok, r.value, {}, r.revision, r.kvs, r.more, r.count,
            r.succeeded, r.responses, r.member};
  }
  static ClientReply refused(ClientId client, std::uint64_t seq, ReplyCode code, std::string error) {
    ClientReply reply{client, seq, code};
    reply.error = std::move(error);
    return reply;
  }
  OpResult result() const {
    return {value, revision, kvs, more, count, succeeded, responses, member};
  }
};

// kvctl status. The node answers from its own state, without Paxos.
// ------------------------------------------------------------------- watch

// A change, as watchers see it: a put (kv is the key's new state) or a
// delete (kv.mod_revision is the revision of the delete; the value and the
// other revisions are empty). Every revision is exactly one event.
enum class EventType : std::uint8_t { put = 0, del = 1 };
struct WatchEvent {
  EventType type = EventType::put;
  KeyValue kv;
  MSGPACK_DEFINE(type, kv)
  bool operator==(const WatchEvent&) const = default;
};

// Client -> front door, not through the log: watch the keys in [key,
// range_end) (as ClientRequest has it) from start_revision on (0: from the
// next change). watch_id is the client's name for it, unique on its
// connection. The node sends at most kWatchWindowBytes of events past the
// last `ack_revision` the client reported (a WatchRequest with ack set and
// the same watch_id: the revision it has processed), so a consumer that
// stops reading holds at most that much in the node's queues; once it falls
// behind the node's event history it is cancelled. cancel ends the watch.
struct WatchRequest {
  std::uint64_t watch_id = 0;
  std::string key;
  std::string range_end;
  std::uint64_t start_revision = 0;
  bool cancel = false;
  bool ack = false;
  std::uint64_t ack_revision = 0;
  MSGPACK_DEFINE(watch_id, key, range_end, start_revision, cancel, ack, ack_revision)
};

// Node -> client, many per watch: `created` first, then events in revision
// order, progress notifications (no events) every watch_progress_interval
// while idle, and `canceled` last. revision: how far this watch has looked
// (at most the node's store revision, or start_revision - 1 on a node still
// behind the start it was asked for): every change in range up to it has
// been sent, so a client that resumes elsewhere starts at revision + 1. On a cancel for
// compaction, compact_revision is the oldest revision the node still holds:
// read the keys again and watch from there.
struct WatchResponse {
  std::uint64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  std::uint64_t revision = 0;
  std::uint64_t compact_revision = 0;
  std::vector<WatchEvent> events;
  std::string error;  // why it was canceled (or refused), when it was not asked to be
  MSGPACK_DEFINE(watch_id, created, canceled, revision, compact_revision, events, error)
};

struct StatusRequest {
  MSGPACK_DEFINE()
};
struct StatusReply {
  std::string name;
  NodeId node = 0;
  InstanceId applied_below = 0;  // instances [0, applied_below) are applied
  InstanceId forget_below = 0;   // Min()
  InstanceId decided_below = 0;  // Max() + 1
  std::uint64_t keys = 0;
  std::uint64_t sessions = 0;    // dedup records held
  bool fault_injection = false;
  // Durability (zero without --data-dir).
  InstanceId snapshot_below = 0;       // the durable snapshot covers [0, snapshot_below)
  std::uint64_t snapshot_bytes = 0;
  std::uint64_t data_dir_bytes = 0;    // everything under --data-dir
  // Added with the data model.
  std::uint64_t revision = 0;          // the store's revision at applied_below
  std::uint64_t watches = 0;           // watches this node streams
  std::uint64_t watch_history_from = 0;  // the oldest revision a watch may start at
  // Added with membership change: the member this node takes for the leader
  // (the author of the latest batch, or the lowest-id voter while the lead
  // is vacant), and the epoch of the configuration governing applied_below.
  NodeId leader = 0;
  std::uint64_t epoch = 0;
  MSGPACK_DEFINE(name, node, applied_below, forget_below, decided_below, keys, sessions,
                 fault_injection, snapshot_below, snapshot_bytes, data_dir_bytes, revision,
                 watches, watch_history_from, leader, epoch)
};

// kvctl snapshot save (added with backup; admin only when the node has
// keys): one chunk of a snapshot of the state this node has applied.
// snapshot_id 0 asks for a new snapshot, made of the state the node holds
// when the request arrives, and its first chunk; otherwise the snapshot
// of that id (from the first reply) from `offset`. The node keeps one
// snapshot for clients, replaced by the next snapshot_id 0 and dropped 30 s
// after its last chunk went out.
struct SnapshotSaveRequest {
  std::uint64_t snapshot_id = 0;
  std::uint64_t offset = 0;
  MSGPACK_DEFINE(snapshot_id, offset)
};
// code ok: `data` is the bytes [offset, offset + data.size()) of a snapshot
// of total_bytes, whose crc32c is `crc`, of the state after the log
// instances [0, applied_below), at store revision `revision`, holding
// `keys` keys, served by the node `name` of the cluster `cluster_id`. Otherwise `error` says why
// (permission_denied: not an admin key; bad_request: no such snapshot
// any more, or the node has no state to give yet).
struct SnapshotSaveReply {
  ReplyCode code = ReplyCode::ok;
  std::string error;
  std::uint64_t snapshot_id = 0;
  InstanceId applied_below = 0;
  std::uint64_t revision = 0;
  std::uint64_t keys = 0;
  std::uint64_t total_bytes = 0;
  std::uint32_t crc = 0;
  std::uint64_t offset = 0;
  std::string data;
  std::string name;
  std::uint64_t cluster_id = 0;  // of the cluster the node belongs to
  MSGPACK_DEFINE(code, error, snapshot_id, applied_below, revision, keys, total_bytes, crc,
                 offset, data, name, cluster_id)
};

// kvctl fault. reach: node names this node may exchange peer messages with
// (empty with reach_all = true heals). drop_rate in [0, 1].
struct FaultRequest {
  bool set_reach = false;
  bool reach_all = true;
  std::vector<std::string> reach;
  bool set_drop = false;
  double drop_rate = 0.0;
  MSGPACK_DEFINE(set_reach, reach_all, reach, set_drop, drop_rate)
};
struct FaultReply {
  ReplyCode code = ReplyCode::ok;
  std::string error;
  std::vector<std::string> reach;  // effective reach after the change
  double drop_rate = 0.0;
  MSGPACK_DEFINE(code, error, reach, drop_rate)
};

// Sent instead of a reply when the request could not even be decoded.
struct ErrorReply {
  ReplyCode code = ReplyCode::bad_request;
  std::string error;
  MSGPACK_DEFINE(code, error)
};

// front door -> applier / peer_link, carrying the ROUTER routing id so the
// answer can find its way back.
struct FromClient {
  std::string route;
  ClientRequest request;
  MSGPACK_DEFINE(route, request)
};
struct WatchFromClient {
  std::string route;
  WatchRequest request;
  MSGPACK_DEFINE(route, request)
};
struct StatusFromClient {
  std::string route;
  MSGPACK_DEFINE(route)
};
struct SnapshotSaveFromClient {
  std::string route;
  SnapshotSaveRequest request;
  MSGPACK_DEFINE(route, request)
};
struct FaultFromClient {
  std::string route;
  FaultRequest request;
  MSGPACK_DEFINE(route, request)
};
// any actor -> front door: send `body` (an encoded client message) to `route`.
// `client_id` and `seq` (added later; zero for replies that answer no
// ClientRequest) let the front door release the request's bytes in flight.
struct ToClient {
  std::string route;
  std::string body;
  ClientId client_id = 0;
  std::uint64_t seq = 0;
  MSGPACK_DEFINE(route, body, client_id, seq)
};

// applier -> local proposer, learner, acceptor and peer link (added with
// membership change): the configurations of the instances from what the
// applier has applied on, and how far they are known (applied + alpha). Sent
// when a change is applied, a snapshot is installed, at start, and to the
// proposer whenever known_below moved before a Propose.
struct ConfigUpdate {
  ConfigHistory history;
  std::uint64_t alpha = 0;
  MSGPACK_DEFINE(history, alpha)
};

// Membership on the peer port (added with membership change). These two
// travel on the asker's own connection: the answer goes back through the
// ROUTER to the connection the question came on, not to an address in the
// configuration, so a node that is no member (yet, or any more) can hear it.
//
// A member added to a running cluster, before its first start (kvpaxosd
// --initial-cluster-state existing) -> a peer's peer link: "which member am
// I, and what are the configurations?" The header's from is kNoNode: the
// asker has no id yet.
struct MemberQuery {
  std::string name;           // its --name
  std::string peer_endpoint;  // its own peer address, as in --cluster
  MSGPACK_DEFINE(name, peer_endpoint)
};

// peer link -> the asker. error empty: `id` is the asker's member id, and
// `history` the configurations the answering node holds, the asker in them.
// Otherwise `error` says why not ("no member named n4 in epoch 3; add it
// with kvctl member add first").
struct MemberInfo {
  std::string error;
  NodeId id = 0;
  ConfigHistory history;
  std::uint64_t alpha = 0;
  std::uint64_t cluster_id = 0;
  MSGPACK_DEFINE(error, id, history, alpha, cluster_id)
};

// peer link -> a removed member that still sends to it: "you were removed
// at `epoch`, which governs from `effective_from`; `voters` are the voters of
// my latest configuration". Sent only once the removal governs every
// instance the sender may run and the sender is done (with a data dir:
// durably) with every instance before effective_from, at most once a second
// per member. The removed member stops once a majority of `voters` told it so.
struct Removed {
  NodeId id = 0;
  std::uint64_t epoch = 0;
  InstanceId effective_from = 0;
  std::vector<NodeId> voters;
  MSGPACK_DEFINE(id, epoch, effective_from, voters)
};

// ------------------------------------------------------------------- the union

// Stable wire tags. Never reuse a number.
enum class MessageType : std::uint8_t {
  prepare = 1, promise = 2, accept = 3, accepted = 4, decided = 5, catch_up_request = 6,
  heartbeat = 7, snapshot_request = 8, snapshot_chunk = 9, join_query = 10, join_info = 11,
  forward_ops = 12, prepare_from = 13, promise_from = 14, member_query = 15, member_info = 16,
  removed = 17, step_down = 18,
  propose = 20, learned = 21, apply = 22, local_done = 23, forget_below = 24,
  local_progress = 25, peer_progress = 26, learner_progress = 27, instance_query = 28,
  instance_report = 29, from_client = 30, status_from_client = 31, fault_from_client = 32,
  to_client = 33, snapshot_needed = 34, snapshot_installed = 35, snapshot_saved = 36,
  watch_from_client = 37, config_update = 38, snapshot_save_from_client = 39,
  accepted_query = 40, accepted_bound = 41,
  client_request = 100, client_reply = 101, status_request = 102, status_reply = 103,
  fault_request = 104, fault_reply = 105, error_reply = 106, watch_request = 107,
  watch_response = 108, snapshot_save_request = 109, snapshot_save_reply = 110,
};

// One row of the message table: a wire tag and the struct it carries.
template <MessageType Tag, typename T>
struct Tagged {
  static constexpr MessageType tag = Tag;
  using type = T;
};

// The one place that maps a tag to a struct. Body is the variant of the
// structs in this order, and tags[i] is the tag of Body's alternative i, so
// the codec never pairs them by position by hand. Compile-time checks: no tag
// and no struct appears twice (message_table_test.cpp pins every struct's
// number on the wire, so a swapped pair fails there).
template <typename... Rows>
struct MessageTable {
  using Body = std::variant<typename Rows::type...>;
  static constexpr std::array<MessageType, sizeof...(Rows)> tags = {Rows::tag...};

  static constexpr bool tags_unique() {
    for (std::size_t i = 0; i < tags.size(); ++i) {
      for (std::size_t j = i + 1; j < tags.size(); ++j) {
        if (tags[i] == tags[j]) return false;
      }
    }
    return true;
  }
  template <typename T>
  static constexpr std::size_t count_of() {
    return (std::size_t{0} + ... + std::size_t{std::is_same_v<T, typename Rows::type>});
  }
  static constexpr bool types_unique() { return ((count_of<typename Rows::type>() == 1) && ...); }
};

using Messages = MessageTable<
    // peer
    Tagged<MessageType::prepare, Prepare>,
    Tagged<MessageType::promise, Promise>,
    Tagged<MessageType::accept, Accept>,
    Tagged<MessageType::accepted, Accepted>,
    Tagged<MessageType::decided, Decided>,
    Tagged<MessageType::catch_up_request, CatchUpRequest>,
    Tagged<MessageType::heartbeat, Heartbeat>,
    // inproc
    Tagged<MessageType::propose, Propose>,
    Tagged<MessageType::learned, Learned>,
    Tagged<MessageType::apply, Apply>,
    Tagged<MessageType::local_done, LocalDone>,
    Tagged<MessageType::forget_below, ForgetBelow>,
    Tagged<MessageType::local_progress, LocalProgress>,
    Tagged<MessageType::peer_progress, PeerProgress>,
    Tagged<MessageType::learner_progress, LearnerProgress>,
    Tagged<MessageType::instance_query, InstanceQuery>,
    Tagged<MessageType::instance_report, InstanceReport>,
    Tagged<MessageType::from_client, FromClient>,
    Tagged<MessageType::status_from_client, StatusFromClient>,
    Tagged<MessageType::fault_from_client, FaultFromClient>,
    Tagged<MessageType::to_client, ToClient>,
    // client wire
    Tagged<MessageType::client_request, ClientRequest>,
    Tagged<MessageType::client_reply, ClientReply>,
    Tagged<MessageType::status_request, StatusRequest>,
    Tagged<MessageType::status_reply, StatusReply>,
    Tagged<MessageType::fault_request, FaultRequest>,
    Tagged<MessageType::fault_reply, FaultReply>,
    Tagged<MessageType::error_reply, ErrorReply>,
    // added later: snapshot transfer (peer), snapshot hand-over (inproc)
    Tagged<MessageType::snapshot_request, SnapshotRequest>,
    Tagged<MessageType::snapshot_chunk, SnapshotChunk>,
    Tagged<MessageType::snapshot_needed, SnapshotNeeded>,
    Tagged<MessageType::snapshot_installed, SnapshotInstalled>,
    // added later: rebuilding a node that lost its data dir (peer)
    Tagged<MessageType::join_query, JoinQuery>,
    Tagged<MessageType::join_info, JoinInfo>,
    // added later: forwarding client ops to the leader (peer)
    Tagged<MessageType::forward_ops, ForwardOps>,
    // added later: Multi-Paxos phase 1 over a range of instances (peer)
    Tagged<MessageType::prepare_from, PrepareFrom>,
    Tagged<MessageType::promise_from, PromiseFrom>,
    // added later: snapshots written off the applier's thread (inproc)
    Tagged<MessageType::snapshot_saved, SnapshotSaved>,
    // added later: watch (client wire, inproc)
    Tagged<MessageType::watch_request, WatchRequest>,
    Tagged<MessageType::watch_response, WatchResponse>,
    Tagged<MessageType::watch_from_client, WatchFromClient>,
    // added with membership change (inproc)
    Tagged<MessageType::config_update, ConfigUpdate>,
    // added with membership change: a new member's first question, and a
    // removed member's notice (peer, answered on the asker's connection)
    Tagged<MessageType::member_query, MemberQuery>,
    Tagged<MessageType::member_info, MemberInfo>,
    Tagged<MessageType::removed, Removed>,
    Tagged<MessageType::step_down, StepDown>,
    // added with backup: kvctl snapshot save (client wire, inproc)
    Tagged<MessageType::snapshot_save_request, SnapshotSaveRequest>,
    Tagged<MessageType::snapshot_save_reply, SnapshotSaveReply>,
    Tagged<MessageType::snapshot_save_from_client, SnapshotSaveFromClient>,
    // added later: an idle node asks its acceptor what is accepted (inproc)
    Tagged<MessageType::accepted_query, AcceptedQuery>,
    Tagged<MessageType::accepted_bound, AcceptedBound>>;
static_assert(Messages::tags_unique(), "two messages share a wire tag");
static_assert(Messages::types_unique(), "a struct appears twice in the message table");

using Body = Messages::Body;

// An actor's output: a message and where it goes.
struct Outbound {
  Address to;
  Body body;
};
using Outbox = std::vector<Outbound>;

}  // namespace kvpaxos

MSGPACK_ADD_ENUM(kvpaxos::InstanceState);
MSGPACK_ADD_ENUM(kvpaxos::OpKind);
MSGPACK_ADD_ENUM(kvpaxos::ReplyCode);
MSGPACK_ADD_ENUM(kvpaxos::CompareTarget);
MSGPACK_ADD_ENUM(kvpaxos::CompareOp);
MSGPACK_ADD_ENUM(kvpaxos::EventType);

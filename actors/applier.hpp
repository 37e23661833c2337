// Applier: the key/value state machine of one node.
//
// Owns the key/value map, the per-client dedup table (sessions), the client
// requests waiting for their log instance, and which instance it proposed for
// each. Handles FromClient and StatusFromClient (from the front door), Apply
// and LearnerProgress (from the learner). Sends Propose to the proposer,
// ToClient to the front door, LocalDone to the learner.
//
// Invariants:
//   instances are applied strictly in order: [0, applied_below) are applied;
//   an op (client_id, seq) changes the map at most once: it runs only when
//     seq > sessions[client_id].last_seq, across retries and across nodes;
//   state changes only in apply(), so every replica that applied the same
//     prefix holds the same map and the same sessions;
//   a session keeps at most one reply, dropped once the client acks it, and
//     all kept replies together stay within options.retained_reply_bytes.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include "actors/actor.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {

struct ApplierOptions {
  std::string name;
  bool fault_injection = false;
  // How long the head of the log may stay undecided while later instances are
  // decided before this node proposes a no-op there to learn or fill it.
  Duration hole_timeout = std::chrono::milliseconds(200);
  // A session untouched for this many instances is dropped; a client idle that
  // long must not retry an old request (the client library never does).
  InstanceId session_idle_instances = 1'000'000;
  // Replies kept for retries, summed over sessions. Past it the oldest are
  // dropped (their sessions stay, so the ops still never run twice); a client
  // that then retries such a request is told its reply is gone. Clients that
  // vanish without acking would otherwise pin one reply each.
  std::size_t retained_reply_bytes = 16 * 1024 * 1024;
};

class Applier final : public ActorLogic {
 public:
  Applier(NodeId self, ApplierOptions options);

  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time now, Outbox& out) override;
  Duration tick_interval() const override { return std::chrono::milliseconds(20); }

  InstanceId applied_below() const { return applied_below_; }
  const std::unordered_map<std::string, std::string>& data() const { return kv_; }
  std::size_t sessions() const { return sessions_.size(); }
  std::size_t retained_replies() const;
  std::size_t retained_reply_bytes() const { return retained_bytes_; }

 private:
  struct Session {
    std::uint64_t last_seq = 0;
    bool has_reply = false;
    std::string reply_value;
    InstanceId last_instance = 0;
  };
  struct Waiter {
    std::uint64_t seq = 0;
    std::string route;
    std::string op;         // encoded KvOp, ready to re-propose
    InstanceId instance = 0;
  };

  void on_request(FromClient m, Outbox& out);
  void on_apply(Apply m, Time now, Outbox& out);
  void execute(const KvOp& op, InstanceId instance);
  void propose(ClientId client, Waiter& w, Outbox& out);
  void answer_waiter(ClientId client, Outbox& out);
  void reply(const std::string& route, ClientReply r, Outbox& out) const;
  void evict_idle_sessions();
  void keep_reply(ClientId client, Session& s, std::string value);
  void drop_reply(Session& s);
  void enforce_reply_budget();
  StatusReply status() const;
  InstanceId next_free_instance() const;

  NodeId self_;
  ApplierOptions options_;
  std::unordered_map<std::string, std::string> kv_;
  std::unordered_map<ClientId, Session> sessions_;
  std::unordered_map<ClientId, Waiter> waiters_;
  std::unordered_map<InstanceId, ClientId> proposed_;
  // Sessions holding a reply, by the instance that produced it (oldest first).
  std::map<InstanceId, ClientId> replies_by_age_;
  std::size_t retained_bytes_ = 0;
  InstanceId applied_below_ = 0;
  InstanceId next_propose_ = 0;
  InstanceId forget_below_ = 0;
  InstanceId decided_below_ = 0;
  Time last_progress_{};
  Time last_hole_proposal_{};
  std::uint64_t undecodable_entries_ = 0;
};

}  // namespace kvpaxos

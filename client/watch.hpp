// WatchStream: every change to a range of keys, in revision order, from one
// revision on, across node failures (docs/protocol.md, "Watch").
//
// Watches one node at a time. A node that stops talking (no event and no
// progress notification for silence_timeout; nodes send progress every 2 s
// by default), refuses, or cancels the watch is left for the next endpoint,
// where the watch is created again from the last revision delivered + 1:
// the caller sees no gap and no event twice. A watch that starts, or must
// resume, before the oldest revision every node keeps fails (compacted()
// and compact_revision(): read the keys again and watch from that read's
// revision + 1). Acknowledges what it delivered, so
// the node keeps sending (a node sends at most a window ahead of the acks).
// With client.learn_members_every, it also reads the member list (through a
// Client of its own: one session) after a fail-over and that often, and
// fails over to the voters it names; next() may then take up to a few
// seconds longer than its timeout while no node answers the read.
// Not thread-safe: one WatchStream per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "client/client.hpp"
#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

struct WatchOptions {
  std::string key;
  std::string range_end;             // as ClientRequest: empty for the key alone, prefix_end(p)
  std::uint64_t start_revision = 0;  // 0: from the next change on
  // No message from the node for this long: it is gone, watch at the next.
  std::chrono::milliseconds silence_timeout{10'000};
};

// What next() delivered: changes not delivered before, in revision order.
struct WatchBatch {
  std::vector<WatchEvent> events;
  // Every change in range up to this revision has been delivered.
  std::uint64_t revision = 0;
};

class WatchStream {
 public:
  // client.endpoints, curve and attempt_timeout apply; client.deadline is how
  // long every node may stay unreachable before next() gives up.
  WatchStream(zmq::context_t& ctx, ClientOptions client, WatchOptions watch);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Waits up to `timeout` for new events (an empty batch when none came).
  // An error when the watch is compacted (compacted() and compact_revision()
  // say from where), refused as invalid, or no node answered for the
  // client's deadline.
  Result<WatchBatch> next(std::chrono::milliseconds timeout);

  std::uint64_t revision() const { return revision_; }
  bool compacted() const { return compact_revision_ != 0; }
  std::uint64_t compact_revision() const { return compact_revision_; }
  int failovers() const { return failovers_; }
  const std::string& endpoint() const;

 private:
  void open();
  void fail_over();
  void send_ack();
  // Reads the member list when a fail-over or learn_members_every asks for it.
  void learn_members_if_due();

  zmq::context_t& ctx_;
  ClientOptions client_;
  WatchOptions watch_;
  std::unique_ptr<NodeConnection> connection_;
  std::size_t current_ = 0;
  std::uint64_t watch_id_ = 1;  // a new id per creation, so a late cancel of the old one is told apart
  bool created_ = false;        // the current node confirmed the watch
  bool start_known_ = false;    // revision_ is meaningful (a start revision, or a node told us)
  std::uint64_t revision_ = 0;
  std::uint64_t compact_revision_ = 0;
  int failovers_ = 0;
  std::size_t compactions_ = 0;  // nodes in a row that no longer hold the next revision
  std::chrono::steady_clock::time_point opened_at_{};
  std::chrono::steady_clock::time_point last_heard_{};
  std::chrono::steady_clock::time_point last_confirmed_{};  // some node held the watch
  // Learning the member list: null when off. client_.endpoints follows it.
  std::unique_ptr<Client> members_;
  bool learn_due_ = false;  // failed over since the last read
  std::chrono::steady_clock::time_point learned_at_{};
};

}  // namespace kvpaxos

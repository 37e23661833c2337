// WatchHub: the watches of one node's clients and the event history they
// read from. Owned by the Applier, on its thread; no sockets, no clock of
// its own (docs/protocol.md, "Watch").
//
// Every change the state machine applies is one event at one revision, so
// the history is a contiguous run of revisions [history_start, revision]:
// bounded by a number of events and of bytes, it forgets the oldest first,
// and a snapshot install (which skips revisions) empties it. A watch reads
// the history from its next revision on, sends the events in its range in
// WatchResponses of at most max_response_bytes, and stops while
// window_bytes of what it sent are not acknowledged by the client (a
// WatchRequest with `ack`), or while all watches together have
// max_unacked_bytes unacknowledged: a consumer that stops reading costs the
// node at most its window. A watch that the history has left behind (its
// consumer too slow, or a snapshot skipped past it) is cancelled with the
// oldest revision kept, so its client can read again and watch from there.
// Idle watches get a progress notification (the revision they have seen
// every change up to) every progress_interval; a watch whose client has
// sent nothing (no ack) for client_timeout is dropped, so watches of
// clients that vanished do not pile up.
//
// Invariants (check_invariants()):
//   the history holds exactly the revisions [history_start, history_start +
//     size) and history_bytes is the sum of its events' sizes, within limits;
//   every watch's acked revision <= the revision it sent up to, and its
//     unacked bytes are the sum of its unacknowledged responses; the node's
//     total unacked bytes is the sum over watches;
//   at most max_watches_per_route watches per route, max_watches in all.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "messages/messages.hpp"

namespace kvpaxos {

struct WatchLimits {
  std::size_t history_events = 100'000;
  std::size_t history_bytes = 16 * 1024 * 1024;
  std::size_t max_watches_per_route = 64;
  std::size_t max_watches = 10'000;
  std::size_t window_bytes = 4 * 1024 * 1024;
  std::size_t max_unacked_bytes = 256 * 1024 * 1024;
  std::size_t max_response_bytes = 1024 * 1024;
  // A response holds at most this many events, so it decodes within a
  // client's value bound (7 msgpack values per event).
  std::size_t max_response_events = 16'384;
  Duration progress_interval = std::chrono::seconds(2);
  Duration client_timeout = std::chrono::seconds(30);
  // Simulator only: a watch created from a revision this node has already
  // applied (a resume after a fail-over) skips that revision's event, to
  // show that the simulator's watchers catch it.
  bool bug_skip_event_on_resume = false;
};

// The bytes an event counts in the history, a window and a response.
std::size_t event_bytes(const WatchEvent& e);

class WatchHub {
 public:
  WatchHub(NodeId self, WatchLimits limits) : self_(self), limits_(limits) {}

  // The store holds `revision` and no events before it are known here (a
  // start, a snapshot loaded): the history restarts after it. Watches that
  // still needed an earlier event are cancelled on the next pump.
  void reset(std::uint64_t revision);
  // Events just applied (revisions revision - events.size() + 1 .. revision,
  // in order), pushed to the watches that wait for them.
  void on_events(std::vector<WatchEvent>& events, std::uint64_t revision, Time now, Outbox& out);
  // A client's create, ack or cancel.
  void on_request(const std::string& route, const WatchRequest& request, std::uint64_t revision,
                  Time now, Outbox& out);
  // Progress notifications, dropping watches of silent clients, and
  // sending what windows opened by acks let through.
  void tick(std::uint64_t revision, Time now, Outbox& out);

  std::size_t watches() const { return watches_.size(); }
  std::uint64_t history_start() const { return history_start_; }
  std::size_t history_size() const { return history_.size(); }
  std::uint64_t unacked_bytes() const { return unacked_total_; }
  std::uint64_t cancelled_behind() const { return cancelled_behind_; }

  // Empty when the invariants above hold, else the first one broken.
  std::string check_invariants() const;

 private:
  struct Sent {
    std::uint64_t up_to = 0;  // the response covered revisions up to this
    std::size_t bytes = 0;
  };
  struct Watch {
    std::string key;
    std::string range_end;
    std::uint64_t next = 1;   // the next revision to look at
    std::uint64_t acked = 0;  // the client has processed every change up to this
    std::deque<Sent> unacked;
    std::size_t unacked_bytes = 0;
    Time last_sent{};
    Time last_heard{};
  };
  using WatchKey = std::pair<std::string, std::uint64_t>;  // route, watch_id
  using Watches = std::map<WatchKey, Watch>;

  void create(const WatchKey& key, const WatchRequest& request, std::uint64_t revision, Time now,
              Outbox& out);
  void ack(Watch& w, std::uint64_t revision);
  // Sends what `w` may send now; false when it was cancelled (erased).
  bool pump(Watches::iterator it, std::uint64_t revision, Time now, Outbox& out);
  void send(const WatchKey& key, WatchResponse r, Outbox& out) const;
  void cancel(Watches::iterator it, std::string why, std::uint64_t compact_revision, Outbox& out);
  void pump_all(std::uint64_t revision, Time now, Outbox& out);
  void trim_history();
  std::size_t watches_of(const std::string& route) const;

  NodeId self_;
  WatchLimits limits_;
  std::deque<WatchEvent> history_;  // revisions history_start_ ..
  std::uint64_t history_start_ = 1;
  std::size_t history_bytes_ = 0;
  Watches watches_;
  std::uint64_t unacked_total_ = 0;
  std::uint64_t cancelled_behind_ = 0;
};

}  // namespace kvpaxos

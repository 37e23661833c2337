#include "actors/kv/watch_hub.hpp"

#include <algorithm>

#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {

std::size_t event_bytes(const WatchEvent& e) {
  return e.kv.key.size() + e.kv.value.size() + kReplyBytesPerKey;
}

void WatchHub::reset(std::uint64_t revision) {
  history_.clear();
  history_bytes_ = 0;
  history_start_ = revision + 1;
}

void WatchHub::trim_history() {
  while (!history_.empty() && (history_.size() > limits_.history_events ||
                               history_bytes_ > limits_.history_bytes)) {
    history_bytes_ -= event_bytes(history_.front());
    history_.pop_front();
    ++history_start_;
  }
}

void WatchHub::on_events(std::vector<WatchEvent>& events, std::uint64_t revision, Time now,
                         Outbox& out) {
  if (events.empty()) return;
  for (WatchEvent& e : events) {
    history_bytes_ += event_bytes(e);
    history_.push_back(std::move(e));
  }
  events.clear();
  trim_history();
  pump_all(revision, now, out);
}

void WatchHub::pump_all(std::uint64_t revision, Time now, Outbox& out) {
  for (auto it = watches_.begin(); it != watches_.end();) {
    auto next = std::next(it);
    pump(it, revision, now, out);
    it = next;
  }
}

std::size_t WatchHub::watches_of(const std::string& route) const {
  std::size_t n = 0;
  for (auto it = watches_.lower_bound({route, 0}); it != watches_.end() && it->first.first == route;
       ++it) {
    ++n;
  }
  return n;
}

void WatchHub::on_request(const std::string& route, const WatchRequest& request,
                          std::uint64_t revision, Time now, Outbox& out) {
  const WatchKey key{route, request.watch_id};
  auto it = watches_.find(key);
  if (request.cancel) {
    if (it != watches_.end()) {
      cancel(it, {}, 0, out);
    } else {
      send(key, WatchResponse{.watch_id = request.watch_id, .canceled = true, .revision = revision},
           out);
    }
    return;
  }
  if (request.ack) {
    if (it == watches_.end()) {
      // Dropped here (a silent spell, or it fell behind): say so, once per ack.
      send(key,
           WatchResponse{.watch_id = request.watch_id, .canceled = true, .revision = revision,
                         .error = "no such watch on this node; create it again from the next "
                                  "revision you need"},
           out);
      return;
    }
    it->second.last_heard = now;
    ack(it->second, request.ack_revision);
    pump(it, revision, now, out);
    return;
  }
  if (it != watches_.end()) {
    send(key,
         WatchResponse{.watch_id = request.watch_id, .canceled = true, .revision = revision,
                       .error = "watch id " + std::to_string(request.watch_id) +
                                " is already in use on this connection; pick another"},
         out);
    return;
  }
  create(key, request, revision, now, out);
}

void WatchHub::create(const WatchKey& key, const WatchRequest& request, std::uint64_t revision,
                      Time now, Outbox& out) {
  WatchResponse refusal{.watch_id = request.watch_id, .canceled = true, .revision = revision};
  if (watches_of(key.first) >= limits_.max_watches_per_route) {
    refusal.error = "too many watches on this connection (at most " +
                    std::to_string(limits_.max_watches_per_route) +
                    "); cancel some or open another connection";
    send(key, std::move(refusal), out);
    return;
  }
  if (watches_.size() >= limits_.max_watches) {
    refusal.error = "this node holds its limit of " + std::to_string(limits_.max_watches) +
                    " watches; try another node or later";
    send(key, std::move(refusal), out);
    return;
  }
  const std::uint64_t start = request.start_revision == 0 ? revision + 1 : request.start_revision;
  if (start < history_start_) {
    refusal.compact_revision = history_start_;
    refusal.error = "compacted: the oldest revision kept is " + std::to_string(history_start_) +
                    " (asked for " + std::to_string(start) +
                    "); read the keys again and watch from the revision of that read + 1";
    send(key, std::move(refusal), out);
    return;
  }
  Watch w{.key = request.key, .range_end = request.range_end, .next = start, .acked = start - 1};
  if (limits_.bug_skip_event_on_resume && request.start_revision != 0 && start <= revision) {
    ++w.next;  // the planted bug (WatchLimits::bug_skip_event_on_resume)
  }
  w.last_sent = now;
  w.last_heard = now;
  auto it = watches_.emplace(key, std::move(w)).first;
  send(key, WatchResponse{.watch_id = request.watch_id, .created = true, .revision = start - 1},
       out);
  pump(it, revision, now, out);
}

void WatchHub::ack(Watch& w, std::uint64_t revision) {
  w.acked = std::max(w.acked, std::min(revision, w.next - 1));
  while (!w.unacked.empty() && w.unacked.front().up_to <= w.acked) {
    w.unacked_bytes -= w.unacked.front().bytes;
    unacked_total_ -= w.unacked.front().bytes;
    w.unacked.pop_front();
  }
}

// Responses go out while the watch has revisions to look at and its window
// (and the node's) has room; `revision` in each is the last revision it
// covers, so a client that resumes elsewhere from revision + 1 misses and
// repeats nothing.
bool WatchHub::pump(Watches::iterator it, std::uint64_t revision, Time now, Outbox& out) {
  Watch& w = it->second;
  while (w.next <= revision) {
    if (w.next < history_start_) {
      ++cancelled_behind_;
      cancel(it,
             "compacted: the oldest revision kept is " + std::to_string(history_start_) +
                 " and this watch still needed " + std::to_string(w.next) +
                 " (its consumer fell behind the node's event history, or a snapshot "
                 "skipped it); read the keys again and watch from that read's revision + 1",
             history_start_, out);
      return false;
    }
    if (w.unacked_bytes >= limits_.window_bytes || unacked_total_ >= limits_.max_unacked_bytes) {
      return true;  // sent enough that the client has not confirmed
    }
    WatchResponse r{.watch_id = it->first.second};
    std::size_t bytes = 0;
    std::uint64_t rev = w.next;
    const std::uint64_t last = std::min(revision, history_start_ + history_.size() - 1);
    for (; rev <= last; ++rev) {
      const WatchEvent& e = history_[rev - history_start_];
      if (!in_range(e.kv.key, w.key, w.range_end)) continue;
      const std::size_t size = event_bytes(e);
      if (!r.events.empty() && (bytes + size > limits_.max_response_bytes ||
                                r.events.size() >= limits_.max_response_events)) {
        break;
      }
      r.events.push_back(e);
      bytes += size;
    }
    w.next = rev;
    if (r.events.empty()) return true;  // nothing of its range; progress tells the revision
    r.revision = rev - 1;
    w.unacked.push_back({rev - 1, bytes});
    w.unacked_bytes += bytes;
    unacked_total_ += bytes;
    w.last_sent = now;
    send(it->first, std::move(r), out);
  }
  return true;
}

void WatchHub::tick(std::uint64_t revision, Time now, Outbox& out) {
  for (auto it = watches_.begin(); it != watches_.end();) {
    auto next = std::next(it);
    Watch& w = it->second;
    if (now - w.last_heard >= limits_.client_timeout) {
      cancel(it,
             "no ack from this client for " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                    limits_.client_timeout)
                                    .count()) +
                 " s; the watch was dropped",
             0, out);
    } else if (pump(it, revision, now, out) && w.next > revision &&
               now - w.last_sent >= limits_.progress_interval) {
      w.last_sent = now;
      send(it->first, WatchResponse{.watch_id = it->first.second, .revision = w.next - 1}, out);
    }
    it = next;
  }
}

void WatchHub::send(const WatchKey& key, WatchResponse r, Outbox& out) const {
  out.push_back({{self_, Actor::front_door}, ToClient{key.first, encode(r)}});
}

void WatchHub::cancel(Watches::iterator it, std::string why, std::uint64_t compact_revision,
                      Outbox& out) {
  Watch& w = it->second;
  unacked_total_ -= w.unacked_bytes;
  send(it->first,
       WatchResponse{.watch_id = it->first.second,
                     .canceled = true,
                     .revision = w.next - 1,
                     .compact_revision = compact_revision,
                     .error = std::move(why)},
       out);
  watches_.erase(it);
}

std::string WatchHub::check_invariants() const {
  std::size_t bytes = 0;
  for (const WatchEvent& e : history_) bytes += event_bytes(e);
  if (bytes != history_bytes_) {
    return "watch hub: history holds " + std::to_string(bytes) + " bytes but counts " +
           std::to_string(history_bytes_);
  }
  for (std::size_t i = 0; i < history_.size(); ++i) {
    if (history_[i].kv.mod_revision != history_start_ + i) {
      return "watch hub: history entry " + std::to_string(i) + " is revision " +
             std::to_string(history_[i].kv.mod_revision) + ", not " +
             std::to_string(history_start_ + i);
    }
  }
  if (history_.size() > limits_.history_events ||
      (history_bytes_ > limits_.history_bytes && !history_.empty())) {
    return "watch hub: history of " + std::to_string(history_.size()) + " events and " +
           std::to_string(history_bytes_) + " bytes is over its limits";
  }
  std::uint64_t total = 0;
  std::map<std::string, std::size_t> per_route;
  for (const auto& [key, w] : watches_) {
    std::size_t unacked = 0;
    for (const Sent& s : w.unacked) unacked += s.bytes;
    if (unacked != w.unacked_bytes) return "watch hub: a watch's unacked bytes are miscounted";
    if (w.acked >= w.next) return "watch hub: a watch acked past what it was sent";
    total += unacked;
    if (++per_route[key.first] > limits_.max_watches_per_route) {
      return "watch hub: too many watches on one route";
    }
  }
  if (total != unacked_total_) return "watch hub: the node's unacked bytes are miscounted";
  if (watches_.size() > limits_.max_watches) return "watch hub: too many watches";
  return {};
}

}  // namespace kvpaxos

#include "client/watch.hpp"

#include <algorithm>

#include "messages/codec.hpp"

namespace kvpaxos {

using SteadyClock = std::chrono::steady_clock;

// How long a watch's read of the member list may take (each time).
constexpr std::chrono::milliseconds kWatchLearnDeadline{2000};

WatchStream::WatchStream(zmq::context_t& ctx, ClientOptions client, WatchOptions watch)
    : ctx_(ctx), client_(std::move(client)), watch_(std::move(watch)) {
  if (watch_.start_revision != 0) {
    revision_ = watch_.start_revision - 1;
    start_known_ = true;
  }
  last_confirmed_ = SteadyClock::now();
  learned_at_ = last_confirmed_;
  if (client_.learn_members_every.count() > 0) {
    ClientOptions reader = client_;
    reader.deadline = std::min(client_.deadline, kWatchLearnDeadline);
    members_ = std::make_unique<Client>(ctx_, std::move(reader));
  }
}

void WatchStream::learn_members_if_due() {
  if (!members_) return;
  const auto now = SteadyClock::now();
  if (!learn_due_ && now - learned_at_ < client_.learn_members_every) return;
  learn_due_ = false;
  learned_at_ = now;
  if (!members_->member(MemberChange{.kind = MemberChangeKind::list}).ok()) return;
  const std::string watching = endpoint();
  client_.endpoints = members_->endpoints();
  const auto it = std::find(client_.endpoints.begin(), client_.endpoints.end(), watching);
  if (it != client_.endpoints.end()) {
    current_ = static_cast<std::size_t>(it - client_.endpoints.begin());
    return;
  }
  current_ = 0;  // the node watched left the configuration
  connection_.reset();
  ++watch_id_;
}

WatchStream::~WatchStream() {
  if (connection_ && created_) {
    try {
      connection_->send(encode(WatchRequest{.watch_id = watch_id_, .cancel = true}));
    } catch (const zmq::error_t&) {
      // the node is gone anyway
    }
  }
}

const std::string& WatchStream::endpoint() const { return client_.endpoints[current_]; }

void WatchStream::open() {
  connection_ = std::make_unique<NodeConnection>(ctx_, endpoint(), client_.curve);
  created_ = false;
  opened_at_ = SteadyClock::now();
  last_heard_ = opened_at_;
  connection_->send(encode(WatchRequest{.watch_id = watch_id_,
                                        .key = watch_.key,
                                        .range_end = watch_.range_end,
                                        .start_revision = start_known_ ? revision_ + 1 : 0}));
}

void WatchStream::fail_over() {
  connection_.reset();
  current_ = (current_ + 1) % client_.endpoints.size();
  ++watch_id_;
  ++failovers_;
  learn_due_ = true;
}

void WatchStream::send_ack() {
  connection_->send(
      encode(WatchRequest{.watch_id = watch_id_, .ack = true, .ack_revision = revision_}));
}

Result<WatchBatch> WatchStream::next(std::chrono::milliseconds timeout) {
  if (client_.endpoints.empty()) return Error{"no endpoints given"};
  if (compacted()) {
    return Error{"compacted: the oldest revision kept is " + std::to_string(compact_revision_)};
  }
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    learn_members_if_due();
    const auto now = SteadyClock::now();
    if (now - last_confirmed_ > client_.deadline + watch_.silence_timeout) {
      return Error{"no node of " + std::to_string(client_.endpoints.size()) +
                   " held the watch for " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                      client_.deadline + watch_.silence_timeout)
                                      .count()) +
                   " s (last tried " + endpoint() + "); is the cluster running?"};
    }
    if (!connection_) {
      try {
        open();
      } catch (const zmq::error_t& e) {
        return Error{"cannot connect to '" + endpoint() + "': " + e.what() + " (expected HOST:PORT)"};
      }
    }
    // Before the node confirms, it has attempt_timeout; after, silence_timeout.
    const auto give_up = created_ ? last_heard_ + watch_.silence_timeout
                                  : opened_at_ + client_.attempt_timeout;
    if (now >= give_up) {
      fail_over();
      continue;
    }
    if (now >= deadline) return WatchBatch{{}, revision_};
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(std::min(give_up, deadline) - now);
    NodeConnection::Received got = connection_->receive(wait);
    if (!got.handshake_error.empty()) {
      if (client_.endpoints.size() == 1) return Error{got.handshake_error};
      fail_over();
      continue;
    }
    if (!got.frame) continue;
    Result<Body> body = decode(*got.frame, kMaxClientFrameBytes, kMaxReplyMessageValues);
    if (!body.ok()) continue;
    if (auto* e = std::get_if<ErrorReply>(&body.value())) {
      if (e->code == ReplyCode::bad_request) return Error{endpoint() + " refused the watch: " + e->error};
      fail_over();
      continue;
    }
    auto* r = std::get_if<WatchResponse>(&body.value());
    if (r == nullptr || r->watch_id != watch_id_) continue;
    last_heard_ = SteadyClock::now();
    if (r->canceled) {
      // Compacted here: another node may still hold the revision (this one
      // may have installed a snapshot); only when every node says so, it is.
      if (r->compact_revision != 0 && ++compactions_ >= client_.endpoints.size()) {
        compact_revision_ = r->compact_revision;
        return Error{endpoint() + ": " + r->error};
      }
      fail_over();  // dropped or refused there (a limit, a silent spell): elsewhere
      continue;
    }
    compactions_ = 0;
    created_ = true;
    last_confirmed_ = last_heard_;
    WatchBatch batch;
    for (WatchEvent& ev : r->events) {
      if (start_known_ && ev.kv.mod_revision <= revision_) continue;  // seen before a fail-over
      batch.events.push_back(std::move(ev));
    }
    if (!start_known_ || r->revision > revision_) revision_ = r->revision;
    start_known_ = true;
    if (!batch.events.empty()) revision_ = std::max(revision_, batch.events.back().kv.mod_revision);
    if (!r->created) send_ack();
    if (!batch.events.empty()) {
      batch.revision = revision_;
      return batch;
    }
  }
}

}  // namespace kvpaxos

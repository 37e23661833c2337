#include "actors/runtime/runner.hpp"

#include <pthread.h>

#include <cstdlib>

#include <zmq_addon.hpp>

#include "actors/core/cluster_config.hpp"
#include "actors/runtime/logger.hpp"
#include "actors/storage/segmented_log.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

constexpr int kDrainBatch = 1024;  // messages handled per wake-up before ticking
// A durable actor's group commit covers at most this much input or time.
constexpr std::size_t kMaxBatchBytes = 1 << 20;
constexpr Duration kMaxBatchTime = std::chrono::milliseconds(2);
constexpr int kPeerSendHwm = 10000;
// A connection that has not completed its ZMTP (and CURVE) handshake by then
// is closed. libzmq's default, 30 s, lets anyone who reaches a port hold a
// descriptor that long per connection without a key; a real handshake on
// these links takes milliseconds.
constexpr int kHandshakeMs = 5000;
constexpr const char* kStop = "$TERM";

void set_common(zmq::socket_t& s) { s.set(zmq::sockopt::linger, 0); }

void set_unbounded(zmq::socket_t& s) {
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
}

bool is_stop(const std::vector<zmq::message_t>& frames) {
  return frames.size() == 1 && frames[0].to_string_view() == kStop;
}

// Receives one multipart message without waiting; empty when none.
std::vector<zmq::message_t> try_recv(zmq::socket_t& s) {
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(s, std::back_inserter(frames), zmq::recv_flags::dontwait)) frames.clear();
  return frames;
}

// Tags 1..5 are the Paxos messages proper (Prepare .. Decided); a body is
// [type, version, fields] so its second byte is the type for tags below 128.
bool is_paxos_message(const std::string& body) {
  if (body.size() < 2 || static_cast<unsigned char>(body[0]) != 0x93) return false;
  const auto tag = static_cast<unsigned char>(body[1]);
  return tag >= static_cast<unsigned char>(MessageType::prepare) &&
         tag <= static_cast<unsigned char>(MessageType::decided);
}

// Receives one multipart message, waiting up to `timeout_ms` (-1: forever);
// empty on timeout. A blocking receive sleeps in one poll() on the socket's
// signal fd; zmq::poll on a single socket costs several more system calls
// per wake-up (ZMQ_EVENTS is re-read, with a poll() each, before and after).
std::vector<zmq::message_t> recv_within(zmq::socket_t& s, int timeout_ms) {
  s.set(zmq::sockopt::rcvtimeo, timeout_ms);
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(s, std::back_inserter(frames))) frames.clear();
  return frames;
}

// Handles up to a batch of the messages waiting on a socket, so that one
// busy socket cannot starve the others in the poll loop. `handle_one`
// receives without waiting and returns false when nothing was there: one
// failed receive per wake-up, where asking ZMQ_EVENTS before each message
// would cost a poll() per message.
template <typename Handler>
void drain(Handler handle_one) {
  for (int i = 0; i < kDrainBatch; ++i) {
    if (!handle_one()) return;
  }
}

// Names the calling thread after what it runs, so that top -H, perf and gdb
// show which actor is busy (Linux keeps 15 characters).
void name_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

void beat(NodeMetrics* m, Actor a) {
  if (m != nullptr) {
    m->heartbeat_ns[static_cast<std::size_t>(a)].store(clock_ns(Clock::now()),
                                                        std::memory_order_relaxed);
  }
}

constexpr Duration kReportInterval = std::chrono::milliseconds(100);

int poll_timeout_ms(Time next_tick) {
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_tick - Clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, wait.count()));
}

}  // namespace

std::string inproc_endpoint(const std::string& ns, NodeId node, Actor actor) {
  return "inproc://" + ns + "/" + std::to_string(node) + "/" + to_string(actor);
}

bool send_frames(zmq::socket_t& s, const std::string& header, const std::string& body,
                 bool wait) {
  const zmq::send_flags more = wait ? zmq::send_flags::sndmore
                                    : zmq::send_flags::sndmore | zmq::send_flags::dontwait;
  // A multipart message is queued whole or not at all, so only the first
  // frame can fail to go.
  if (!s.send(zmq::buffer(header), more)) return false;
  (void)s.send(zmq::buffer(body), wait ? zmq::send_flags::none : zmq::send_flags::dontwait);
  return true;
}

// ------------------------------------------------------------------ Postbox

namespace {

// A new socket needs a descriptor (its mailbox's eventfd). Out of them
// (EMFILE/ENFILE), waiting is better than ending the actor thread, as it
// once did: descriptors come back as connections close, and the client
// connection cap (ClientConnections) leaves a reserve for this.
std::unique_ptr<zmq::socket_t> open_push_socket(zmq::context_t& ctx) {
  for (int attempt = 0;; ++attempt) {
    try {
      return std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
    } catch (const zmq::error_t& e) {
      if (e.num() != EMFILE && e.num() != ENFILE) throw;
      if (attempt % 100 == 0) {  // one line a second
        log::error("cannot open an inproc socket; retrying (raise the open-file limit, "
                   "ulimit -n, if this lasts)",
                   {{"error", e.what()}});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace

Postbox::Postbox(zmq::context_t& ctx, std::string ns, NodeId self, Actor owner)
    : ctx_(ctx), ns_(std::move(ns)), self_(self), owner_(owner) {}

zmq::socket_t& Postbox::socket_for(Actor local) {
  auto& slot = sockets_[static_cast<std::size_t>(local)];
  if (!slot) {
    slot = open_push_socket(ctx_);
    set_common(*slot);
    set_unbounded(*slot);
    slot->connect(inproc_endpoint(ns_, self_, local));
  }
  return *slot;
}

void Postbox::forward(Actor local, const std::string& header, const std::string& body) {
  // With no high-water mark a send only fails when the inbox is gone, i.e.
  // while the node shuts down; blocking then would hang the shutdown.
  (void)send_frames(socket_for(local), header, body);
}

void Postbox::send(const Outbound& m) {
  const FrameHeader header{m.to, {self_, owner_}, 0, 0};
  const Actor via = m.to.node == self_ ? m.to.actor : Actor::peer_link;
  forward(via, encode_header(header), encode(m.body));
}

void Postbox::send_all(Outbox& out) {
  for (const Outbound& m : out) send(m);
  out.clear();
}

// -------------------------------------------------------------------- Inbox

Inbox::Inbox(zmq::context_t& ctx, const std::string& ns, NodeId node, Actor actor)
    : pull_(ctx, zmq::socket_type::pull), stop_(ctx, zmq::socket_type::push) {
  set_common(pull_);
  set_unbounded(pull_);
  pull_.bind(inproc_endpoint(ns, node, actor));
  set_common(stop_);
  stop_.connect(inproc_endpoint(ns, node, actor));
}

void Inbox::request_stop() { stop_.send(zmq::str_buffer("$TERM"), zmq::send_flags::none); }

// -------------------------------------------------------------- ActorThread

ActorThread::ActorThread(zmq::context_t& ctx, std::string ns, NodeId self, Actor kind,
                         std::unique_ptr<ActorLogic> logic, std::string node_name,
                         std::unique_ptr<RecordLog> log, bool to_disk,
                         NodeMetrics* metrics)
    : ctx_(ctx),
      ns_(std::move(ns)),
      self_(self),
      kind_(kind),
      logic_(std::move(logic)),
      node_name_(std::move(node_name)),
      log_(std::move(log)),
      to_disk_(to_disk),
      metrics_(metrics),
      inbox_(ctx_, ns_, self_, kind_),
      thread_([this] { run(); }) {}

ActorThread::~ActorThread() {
  inbox_.request_stop();
  thread_.join();
}

// The only disk writes on the hot path: the batch's Writes, persisted and
// synced before anything the batch produced is sent.
void ActorThread::persist_or_die() {
  if (std::string fatal = logic_->fatal(); !fatal.empty()) {
    log::error(fatal);
    std::_Exit(3);
  }
  Writes writes = logic_->take_writes();
  if (writes.empty() || !log_) return;
  // A stuck disk shows as an fsync in progress for long (/livez).
  const bool timed = metrics_ != nullptr && to_disk_;
  const Time start = Clock::now();
  if (timed) metrics_->fsync_started_ns.store(clock_ns(start), std::memory_order_relaxed);
  Result<bool> synced = persist(*log_, std::move(writes), to_disk_);
  if (timed) {
    metrics_->fsync_duration.observe(Clock::now() - start);
    metrics_->fsync_started_ns.store(0, std::memory_order_relaxed);
  }
  if (synced.ok()) return;
  // The kernel may have dropped what it could not write: continuing could
  // answer with a promise the disk does not hold. Fail-stop instead.
  log::error("lost durability; stopping the node (restart it once the disk is healthy)",
             {{"error", synced.error()}});
  std::_Exit(3);
}

void ActorThread::run() {
  name_thread(to_string(kind_));
  const log::ThreadSource source({node_name_, to_string(kind_)});
  try {
    Postbox postbox(ctx_, ns_, self_, kind_);
    Outbox out;
    Time next_tick = Clock::now();
    Time next_debug = Clock::now();
    Time next_report = Clock::now();
    for (;;) {
      beat(metrics_, kind_);
      if (Clock::now() >= next_tick) {
        const Time now = Clock::now();
        if (metrics_ != nullptr && now >= next_report) {
          next_report = now + kReportInterval;
          if (std::optional<LogicReport> r = logic_->report()) publish(*metrics_, *r);
        }
        if (now >= next_debug && log::level() >= log::Level::debug) {
          next_debug = now + std::chrono::seconds(1);
          if (std::string state = logic_->debug_state(); !state.empty()) {
            log::debug(state);
          }
        }
        logic_->tick(now, out);
        logic_->flush(now, out);
        persist_or_die();
        postbox.send_all(out);
        next_tick = now + logic_->tick_interval();
      }
      std::vector<zmq::message_t> frames = recv_within(inbox_.socket(), poll_timeout_ms(next_tick));
      if (frames.empty()) continue;
      std::size_t batch_bytes = 0;
      Time batch_start = Clock::now();
      for (int i = 0; i < kDrainBatch; ++i) {
        if (i > 0) frames = try_recv(inbox_.socket());
        if (frames.empty()) break;
        if (is_stop(frames)) return;
        if (frames.size() != 2) {
          log::warn("dropped a message of " + std::to_string(frames.size()) +
                    " frames (expected header + body)");
          continue;
        }
        Result<FrameHeader> header = decode_header(frames[0].to_string_view());
        Result<Body> body = decode(frames[1].to_string_view());
        if (!header.ok() || !body.ok()) {
          log::warn("dropped an undecodable message: " +
                    (header.ok() ? body.error() : header.error()));
          continue;
        }
        batch_bytes += frames[1].size();
        logic_->handle(header->from, std::move(body.value()), Clock::now(), out);
        // Memory-only actors answer at once. Durable ones group-commit:
        // one sync for many messages, before any of their replies leave,
        // but a batch stays small and short so replies are never held long;
        // what a logic holds back to merge waits no longer either.
        const bool batch_full =
            batch_bytes >= kMaxBatchBytes || Clock::now() - batch_start >= kMaxBatchTime;
        if (batch_full) {
          logic_->flush(Clock::now(), out);
          batch_bytes = 0;
          batch_start = Clock::now();
        }
        if (batch_full || !log_) {
          persist_or_die();
          postbox.send_all(out);
        }
      }
      logic_->flush(Clock::now(), out);
      persist_or_die();
      postbox.send_all(out);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) log::error("stopped on a ZeroMQ error", {{"error", e.what()}});
  }
}

// ----------------------------------------------------------- SnapshotWriter

SnapshotWriter::SnapshotWriter(zmq::context_t& ctx, std::string ns, NodeId self, std::string dir,
                               std::string node_name, NodeMetrics* metrics)
    : ctx_(ctx),
      ns_(std::move(ns)),
      self_(self),
      dir_(std::move(dir)),
      node_name_(std::move(node_name)),
      metrics_(metrics) {
  thread_ = std::thread([this] { run(); });
}

SnapshotWriter::~SnapshotWriter() {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void SnapshotWriter::save(InstanceId applied_below, std::string bytes) {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace_back(applied_below, std::move(bytes));
  }
  wake_.notify_one();
}

void SnapshotWriter::run() {
  name_thread("snapshots");
  const log::ThreadSource source({node_name_, "snapshots"});
  try {
    zmq::socket_t applier(ctx_, zmq::socket_type::push);
    set_common(applier);
    set_unbounded(applier);
    applier.connect(inproc_endpoint(ns_, self_, Actor::applier));
    const FrameHeader header{{self_, Actor::applier}, {self_, Actor::applier}, 0, 0};
    for (;;) {
      std::pair<InstanceId, std::string> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      const Time start = Clock::now();
      Result<bool> written = write_file_atomically(dir_, "snapshot", job.second);
      if (metrics_ != nullptr) metrics_->snapshot_save_duration.observe(Clock::now() - start);
      job.second = std::string();  // the state's copy goes before the next one comes
      const SnapshotSaved saved{job.first, written.ok() ? std::string() : written.error()};
      (void)send_frames(applier, encode_header(header), encode(saved));
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return;  // the node is shutting down
    // Without its writer the applier never snapshots again: Done would stay
    // where it is and every node would keep its log. Fail-stop instead.
    log::error("snapshot writer stopped on a ZeroMQ error; stopping the node (restart it)",
               {{"error", e.what()}});
    std::_Exit(3);
  }
}

// ---------------------------------------------------------- FrontDoorThread

FrontDoorThread::FrontDoorThread(zmq::context_t& ctx, std::string ns, NodeId self,
                                 const std::string& endpoint, bool fault_injection,
                                 const TransportSecurity* security, std::string node_name,
                                 NodeMetrics* metrics)
    : ctx_(ctx),
      ns_(std::move(ns)),
      self_(self),
      logic_(self, fault_injection),
      keyed_(security != nullptr),
      node_name_(std::move(node_name)),
      metrics_(metrics),
      inbox_(ctx_, ns_, self_, Actor::front_door),
      router_(ctx_, zmq::socket_type::router) {
  logic_.set_peer_keys_required(keyed_);
  if (metrics_ != nullptr) logic_.set_metrics(&metrics_->client_requests);
  set_common(router_);
  router_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxClientFrameBytes));
  router_.set(zmq::sockopt::rcvhwm, kClientRecvHwm);
  router_.set(zmq::sockopt::handshake_ivl, kHandshakeMs);
  if (security != nullptr) {
    make_curve_server(router_, security->client_server_key, client_zap_domain(ns_));
  }
  router_.bind(endpoint);
  bound_ = router_.get(zmq::sockopt::last_endpoint);
  connections_ = std::make_unique<ClientConnections>(
      ctx_, router_, "inproc://" + ns_ + "/" + std::to_string(self_) + "/client-monitor",
      client_connection_cap(raise_open_file_limit()));
  thread_ = std::thread([this] { run(); });
}

FrontDoorThread::~FrontDoorThread() {
  inbox_.request_stop();
  thread_.join();
}

void FrontDoorThread::send_to_client(const ToClient& m) {
  // ROUTER drops silently when the client is gone or its queue is full.
  if (router_.send(zmq::buffer(m.route), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
    (void)router_.send(zmq::buffer(m.body), zmq::send_flags::dontwait);
  }
  // Admission control: its request is no longer in flight. Metrics: answered
  // now, whether or not the client was still there to take it.
  logic_.on_reply(m, Clock::now());
}

bool FrontDoorThread::on_client_message() {
  std::vector<zmq::message_t> frames = try_recv(router_);
  if (frames.empty()) return false;
  const Time received = Clock::now();
  std::string route = frames[0].to_string();
  connections_->on_message(zmq_msg_get(frames.back().handle(), ZMQ_SRCFD));  // -1: unknown
  Outbox out;
  const bool admin = !keyed_ || is_admin_user(user_id_of(frames.back()));
  // A DEALER sends [body]; a REQ-style client puts an empty delimiter first.
  if (frames.size() == 2) {
    logic_.on_client_frame(std::move(route), frames[1].to_string_view(), out, admin, received);
  } else if (frames.size() == 3 && frames[1].size() == 0) {
    logic_.on_client_frame(std::move(route), frames[2].to_string_view(), out, admin, received);
  } else {
    logic_.on_malformed_message(std::move(route), frames.size() - 1, out, received);
  }
  // The front door's own replies go out before the next frame is read: its
  // logic times a refusal by that order.
  for (Outbound& m : out) {
    if (m.to.actor == Actor::front_door) {
      log::debug("rejected a client request");
      send_to_client(std::get<ToClient>(m.body));
    } else {
      postbox_->send(m);
    }
  }
  return true;
}

void FrontDoorThread::run() {
  name_thread(to_string(Actor::front_door));
  const log::ThreadSource source({node_name_, to_string(Actor::front_door)});
  try {
    postbox_ = std::make_unique<Postbox>(ctx_, ns_, self_, Actor::front_door);
    Time next_tick = Clock::now();
    for (;;) {
      beat(metrics_, Actor::front_door);
      zmq::pollitem_t items[] = {{inbox_.socket().handle(), 0, ZMQ_POLLIN, 0},
                                 {router_.handle(), 0, ZMQ_POLLIN, 0},
                                 {connections_->events().handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 3, std::chrono::milliseconds(poll_timeout_ms(next_tick)));
      if ((items[2].revents & ZMQ_POLLIN) != 0) connections_->on_events();
      if ((items[0].revents & ZMQ_POLLIN) != 0) {
        for (int i = 0; i < kDrainBatch; ++i) {
          std::vector<zmq::message_t> frames = try_recv(inbox_.socket());
          if (frames.empty()) break;
          if (is_stop(frames)) {
            postbox_.reset();
            return;
          }
          if (frames.size() != 2) continue;
          Result<Body> body = decode(frames[1].to_string_view());
          if (!body.ok()) continue;
          if (auto* m = std::get_if<ToClient>(&body.value())) send_to_client(*m);
        }
      }
      if ((items[1].revents & ZMQ_POLLIN) != 0) drain([this] { return on_client_message(); });
      // After the drain: every complete message has been counted.
      if (const Time now = Clock::now(); now >= next_tick) {
        connections_->on_tick();
        next_tick = now + connections_->tick_interval();
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) log::error("front door stopped", {{"error", e.what()}});
  }
  postbox_.reset();
}

// ----------------------------------------------------------- PeerLinkThread

PeerLinkThread::PeerLinkThread(zmq::context_t& ctx, std::string ns, NodeId self,
                               const ConfigHistory& members, const std::string& endpoint,
                               std::uint64_t cluster_id, std::uint64_t seed,
                               PeerTrafficStats& stats, const TransportSecurity* security,
                               ZapHandler* zap, bool client_port, std::string node_name,
                               NodeMetrics* metrics)
    : ctx_(ctx),
      ns_(std::move(ns)),
      self_(self),
      logic_(self, members, seed),
      stats_(stats),
      metrics_(metrics),
      node_name_(std::move(node_name)),
      inbox_(ctx_, ns_, self_, Actor::peer_link),
      router_(ctx_, zmq::socket_type::router),
      cluster_id_(cluster_id),
      salt_(static_cast<std::mt19937::result_type>(seed ^ std::random_device{}())),
      security_(security),
      zap_(zap),
      client_port_(client_port),
      authenticated_(security != nullptr) {
  logic_.set_cluster_id(cluster_id);
  set_common(router_);
  router_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxPeerFrameBytes));
  router_.set(zmq::sockopt::rcvhwm, kPeerSendHwm);
  router_.set(zmq::sockopt::handshake_ivl, kHandshakeMs);
  if (security != nullptr) make_curve_server(router_, security->node_key, peer_zap_domain(ns_));
  {
    const log::ThreadSource source({node_name_, to_string(Actor::peer_link)});
    sync_dealers();  // and the ZAP policy, before anyone can connect
  }
  router_.bind(endpoint);
  thread_ = std::thread([this] { run(); });
}

void PeerLinkThread::sync_dealers() {
  members_generation_ = logic_.members_generation();
  const std::map<NodeId, PeerAddress> members = logic_.members();
  // The keys each member may connect with, and the one to pin.
  MemberKeys keys;
  if (security_ != nullptr) {
    const auto files = [this](const std::string& name) { return security_->key_files(name); };
    keys = member_keys(members, files);
    if (zap_ != nullptr) {
      register_policies(*zap_, *security_, keys, ns_, client_port_,
                        member_keys(logic_.removed_members(), files));
    }
  }
  for (auto it = dealers_.begin(); it != dealers_.end();) {
    auto m = members.find(it->first);
    const bool rekeyed = security_ != nullptr && keys[it->first] != dealer_keys_[it->first];
    if (m == members.end() || m->second.endpoint != endpoints_[it->first] || rekeyed) {
      monitors_.erase(it->first);
      endpoints_.erase(it->first);
      dealer_keys_.erase(it->first);
      pinned_key_.erase(it->first);
      it = dealers_.erase(it);  // closed: linger 0 (set_common), queued frames go
    } else {
      ++it;
    }
  }
  for (const auto& [peer, m] : members) {
    if (dealers_.count(peer) != 0) continue;
    if (m.endpoint.empty()) {
      log::warn("a member has no peer endpoint in the configuration; not connecting to it",
                {{"peer", m.name}, {"peer_id", peer}});
      continue;
    }
    if (security_ != nullptr && keys[peer].empty()) {
      log::error("a member has no CURVE key: its configuration entry has none and --peer-keys "
                 "holds no " + m.name + ".key; put its public key there and restart this node",
                 {{"peer", m.name}, {"peer_id", peer}, {"endpoint", m.endpoint}});
      continue;
    }
    endpoints_[peer] = m.endpoint;
    if (security_ != nullptr) dealer_keys_[peer] = keys[peer];
    log::info("connecting to a member",
              {{"peer", m.name}, {"peer_id", peer}, {"endpoint", m.endpoint}});
    connect_dealer(peer);
  }
}

void PeerLinkThread::connect_dealer(NodeId peer) {
  monitors_.erase(peer);
  auto d = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  set_common(*d);
  d->set(zmq::sockopt::sndhwm, kPeerSendHwm);
  d->set(zmq::sockopt::immediate, 1);  // never queue for a peer that is not connected
  d->set(zmq::sockopt::reconnect_ivl, 50);
  d->set(zmq::sockopt::reconnect_ivl_max, 1000);
  d->set(zmq::sockopt::routing_id, link_identity(cluster_id_, self_, salt_()));
  if (security_ != nullptr) {
    const std::vector<std::string>& keys = dealer_keys_.at(peer);
    make_curve_client(*d, security_->node_key, keys.at(pinned_key_[peer] % keys.size()));
    if (keys.size() > 1) {
      const std::string watch = "inproc://" + ns_ + "/peer-monitor-" + std::to_string(peer) + "-" +
                                std::to_string(monitor_serial_++);
      if (zmq_socket_monitor(d->handle(), watch.c_str(),
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0) {
        monitors_[peer] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
        set_common(*monitors_[peer]);
        monitors_[peer]->connect(watch);
      }
    }
  }
  d->connect(endpoints_.at(peer));
  dealers_[peer] = std::move(d);
}

std::string PeerLinkThread::peer_name(NodeId peer) const {
  const std::map<NodeId, PeerAddress> members = logic_.members();
  const auto m = members.find(peer);
  return m == members.end() ? std::string() : m->second.name;
}

// The peer presented another of its accepted keys (it was restarted with a
// new one): pin the next key. The frames queued for it are lost, as on any
// reconnect; Paxos retransmits.
void PeerLinkThread::on_handshake_event(NodeId peer) {
  std::vector<zmq::message_t> event = try_recv(*monitors_[peer]);
  if (event.empty()) return;
  const std::vector<std::string>& keys = dealer_keys_.at(peer);
  pinned_key_[peer] = (pinned_key_[peer] + 1) % keys.size();
  log::info("the CURVE handshake failed; connecting again with its key " +
                std::to_string(pinned_key_[peer] + 1) + " of " + std::to_string(keys.size()) +
                " (a key rotation?)",
            {{"peer", peer_name(peer)}, {"peer_id", peer}, {"endpoint", endpoints_.at(peer)}});
  (void)zmq_socket_monitor(dealers_.at(peer)->handle(), nullptr, 0);
  connect_dealer(peer);
}

PeerLinkThread::~PeerLinkThread() {
  inbox_.request_stop();
  thread_.join();
}

void PeerLinkThread::send_to_peer(const PeerFrame& f) {
  auto dealer = dealers_.find(f.header.to.node);
  PeerMetrics* peer = metrics_ != nullptr && f.header.to.node < kMaxTrackedPeers
                          ? &metrics_->peers[f.header.to.node]
                          : nullptr;
  const std::string header = encode_header(f.header);
  if (dealer == dealers_.end() || !send_frames(*dealer->second, header, f.body)) {
    stats_.dropped.fetch_add(1, std::memory_order_relaxed);  // queue full or peer unreachable
    if (peer != nullptr) peer->send_failures.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (peer != nullptr) {
    peer->bytes_sent.fetch_add(header.size() + f.body.size(), std::memory_order_relaxed);
  }
  if (is_paxos_message(f.body)) stats_.paxos_sent.fetch_add(1, std::memory_order_relaxed);
}

void PeerLinkThread::on_local_message(std::vector<zmq::message_t> frames) {
  if (frames.size() != 2) return;
  Result<FrameHeader> header = decode_header(frames[0].to_string_view());
  if (!header.ok()) return;
  const Time now = Clock::now();
  if (header->to.node != self_) {
    if (auto f = logic_.outbound(PeerFrame{*header, frames[1].to_string()}, now)) {
      send_to_peer(*f);
    } else {
      stats_.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  Result<Body> body = decode(frames[1].to_string_view());
  if (!body.ok()) return;
  Outbox out;
  logic_.handle(header->from, std::move(body.value()), now, out);
  postbox_->send_all(out);
  if (logic_.members_generation() != members_generation_) sync_dealers();
}

bool PeerLinkThread::on_peer_message() {
  std::vector<zmq::message_t> frames = try_recv(router_);
  if (frames.empty()) return false;
  if (frames.size() != 3) {
    log::warn("dropped a peer message of " + std::to_string(frames.size()) +
              " frames (expected identity, header, body)");
    return true;
  }
  Result<FrameHeader> header = decode_header(frames[1].to_string_view());
  if (!header.ok()) {
    log::warn("dropped a peer message: " + header.error());
    return true;
  }
  // With CURVE the sender is whoever's key the connection was accepted
  // with (the ZAP handler named it), never what the header claims.
  std::optional<NodeId> sender;
  if (authenticated_) sender = authenticated_node(frames[1]);
  if (const NodeId from = sender.value_or(header->from.node);
      metrics_ != nullptr && from < kMaxTrackedPeers) {
    metrics_->peers[from].bytes_received.fetch_add(frames[1].size() + frames[2].size(),
                                                   std::memory_order_relaxed);
  }
  Outbox out;
  std::optional<PeerFrame> f = logic_.inbound(PeerFrame{*header, frames[2].to_string()},
                                              Clock::now(), out, sender,
                                              cluster_of_link(frames[0].to_string_view()));
  postbox_->send_all(out);
  for (const PeerFrame& a : logic_.take_answers()) {
    // Back on the connection the frame came on; dropped if it is gone.
    bool sent = false;
    try {
      sent = router_.send(zmq::buffer(frames[0].to_string_view()),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait).has_value() &&
             send_frames(router_, encode_header(a.header), a.body);
    } catch (const zmq::error_t&) {
    }
    if (!sent) stats_.dropped.fetch_add(1, std::memory_order_relaxed);
    if (const NodeId to = a.header.to.node; sent && to != kNoNode) {  // a Removed notice
      const std::map<NodeId, PeerAddress> removed = logic_.removed_members();
      const auto r = removed.find(to);
      log::warn("a removed member still calls: told it it was removed (everything else it "
                "sends is refused); it exits with status 4 once a majority of the voters told it",
                {{"peer", r == removed.end() ? std::to_string(to) : r->second.name},
                 {"peer_id", to}});
    }
  }
  if (!f) return true;
  if (is_paxos_message(f->body)) stats_.paxos_received.fetch_add(1, std::memory_order_relaxed);
  postbox_->forward(f->header.to.actor, encode_header(f->header), f->body);
  return true;
}

bool PeerLinkThread::on_answer(NodeId peer) {
  std::vector<zmq::message_t> frames = try_recv(*dealers_.at(peer));
  if (frames.empty()) return false;
  if (frames.size() != 2) return true;
  Result<FrameHeader> header = decode_header(frames[0].to_string_view());
  if (!header.ok()) return true;
  logic_.answered(PeerFrame{*header, frames[1].to_string()}, peer);
  if (retired_) return true;
  if (std::optional<Retirement> r = logic_.retirement()) {
    retired_ = true;
    std::string who;
    for (const std::string& n : r->told_by) who += (who.empty() ? "" : ", ") + n;
    log::info(who + " say this member was removed",
              {{"epoch", r->epoch}, {"instance", r->effective_from}});
    stats_.removed_from.store(r->effective_from, std::memory_order_relaxed);
    stats_.removed_epoch.store(r->epoch, std::memory_order_release);
  }
  return true;
}

// Who is a member now, and when each was last heard from (/readyz's quorum).
void PeerLinkThread::publish_peers() {
  if (metrics_ == nullptr) return;
  beat(metrics_, Actor::peer_link);
  for (NodeId id = 0; id < kMaxTrackedPeers; ++id) {
    PeerMetrics& p = metrics_->peers[id];
    const bool member = logic_.is_member(id);
    p.member.store(member, std::memory_order_relaxed);
    const Time heard = member ? logic_.last_heard(id) : Time{};
    p.last_heard_ns.store(heard == Time{} ? 0 : clock_ns(heard), std::memory_order_relaxed);
  }
}

// At most one line a second, naming how many frames were refused and why.
void PeerLinkThread::log_refusals() {
  const RefusedPeerFrames& now = logic_.refused();
  if (Clock::now() < next_refusal_log_) return;
  const std::uint64_t forged = now.forged_sender - logged_.forged_sender;
  const std::uint64_t misrouted = now.wrong_receiver - logged_.wrong_receiver;
  const std::uint64_t not_for_peers = now.not_for_peers - logged_.not_for_peers;
  const std::uint64_t foreign = now.other_cluster - logged_.other_cluster;
  if (foreign + forged + misrouted + not_for_peers == 0) return;
  if (foreign > 0) {
    log::warn("dropped " + std::to_string(foreign) + " peer frames from a node of "
              "another cluster (its cluster id is not this cluster's); is a node of another "
              "cluster, or of one started with another --cluster-token, given this node's "
              "address?");
  }
  if (forged + misrouted + not_for_peers > 0) {
    log::warn("dropped peer frames: " + std::to_string(forged) +
              " whose header names another sender than the key they came with, " +
              std::to_string(misrouted) + " not addressed to this node, " +
              std::to_string(not_for_peers) + " for actors peers may not reach (" +
              std::to_string(now.forged_sender) + ", " + std::to_string(now.wrong_receiver) +
              ", " + std::to_string(now.not_for_peers) + " since start)");
  }
  logged_ = now;
  next_refusal_log_ = Clock::now() + std::chrono::seconds(1);
}

void PeerLinkThread::run() {
  name_thread(to_string(Actor::peer_link));
  const log::ThreadSource source({node_name_, to_string(Actor::peer_link)});
  try {
    postbox_ = std::make_unique<Postbox>(ctx_, ns_, self_, Actor::peer_link);
    Time next_tick = Clock::now();
    for (;;) {
      if (Clock::now() >= next_tick) {
        for (const PeerFrame& heartbeat : logic_.tick(Clock::now())) send_to_peer(heartbeat);
        // Peers answer on the dealers rarely (a Removed notice): read them
        // here, not in every poll. Each socket in a zmq::poll costs system
        // calls per wake-up, and this loop wakes for every peer message (the
        // dealers in the poll set cost 5-7% of the throughput, bench/ab).
        for (const auto& [peer, dealer] : dealers_) {
          for (int i = 0; i < kDrainBatch && on_answer(peer); ++i) {
          }
        }
        log_refusals();
        publish_peers();
        next_tick = Clock::now() + std::chrono::milliseconds(10);
      }
      // On the stack: this loop runs for every peer message.
      std::array<zmq::pollitem_t, 2 + kMaxClusterSize> items;
      std::array<NodeId, kMaxClusterSize> watched;
      items[0] = {inbox_.socket().handle(), 0, ZMQ_POLLIN, 0};
      items[1] = {router_.handle(), 0, ZMQ_POLLIN, 0};
      std::size_t watching = 0;
      for (const auto& [peer, monitor] : monitors_) {
        if (watching == kMaxClusterSize) break;
        items[2 + watching] = {monitor->handle(), 0, ZMQ_POLLIN, 0};
        watched[watching++] = peer;
      }
      zmq::poll(items.data(), 2 + watching, std::chrono::milliseconds(poll_timeout_ms(next_tick)));
      if ((items[0].revents & ZMQ_POLLIN) != 0) {
        for (int i = 0; i < kDrainBatch; ++i) {
          std::vector<zmq::message_t> frames = try_recv(inbox_.socket());
          if (frames.empty()) break;
          if (is_stop(frames)) {
            postbox_.reset();
            return;
          }
          on_local_message(std::move(frames));
        }
      }
      if ((items[1].revents & ZMQ_POLLIN) != 0) drain([this] { return on_peer_message(); });
      for (std::size_t w = 0; w < watching; ++w) {
        if ((items[2 + w].revents & ZMQ_POLLIN) == 0) continue;
        // It may reconnect or close sockets: look the peer up again.
        if (monitors_.count(watched[w]) != 0) on_handshake_event(watched[w]);
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) log::error("peer link stopped", {{"error", e.what()}});
  }
  postbox_.reset();
}

}  // namespace kvpaxos

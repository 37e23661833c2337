#include "actors/runtime/node.hpp"

#include <algorithm>
#include <random>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <malloc.h>
#include <optional>

#include <zmq_addon.hpp>

#include "actors/node/node_logic.hpp"
#include "actors/observe/http_server.hpp"
#include "actors/observe/metrics.hpp"
#include "actors/paxos/join.hpp"
#include "actors/runtime/durable_acceptor.hpp"
#include "actors/runtime/logger.hpp"
#include "actors/runtime/paxos_peer.hpp"
#include "actors/runtime/runner.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/security/zap_handler.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

namespace {

ErrorKind listen_error_kind(const zmq::error_t& e) {
  return e.num() == EADDRINUSE ? ErrorKind::address_in_use : ErrorKind::other;
}

// glibc serves a block above its mmap threshold from a fresh mapping and
// unmaps it on free, so every copy of a large value (one per actor hop) paid
// for page faults, zeroing and munmap: 1 MiB puts ran at 15/s, two thirds of
// their CPU in the kernel. Blocks up to 4 MiB now come from the heap arenas
// and are reused. Its default, a threshold that rises with the largest block
// freed, would keep those arenas from shrinking after a burst (a node kept
// ~100 MiB after forgetting 1 MiB values), so the threshold is fixed, heaps
// shrink once 4 MiB at their top is free, and kvpaxosd returns the free
// pages inside them every second (malloc_trim). 1 MiB puts: 48/s; resident
// memory after the burst: the state plus ~20 MiB.
void tune_allocator() {
  static const bool done = [] {
    return mallopt(M_MMAP_THRESHOLD, 4 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 4 << 20) == 1;
  }();
  (void)done;
}
}  // namespace

Node::Node(NodeConfig config)
    : config_(std::move(config)),
      traffic_(std::make_unique<PeerTrafficStats>()),
      metrics_(std::make_unique<NodeMetrics>()) {
  tune_allocator();
}

Node::~Node() {
  // The endpoint reads what the others write: it goes first. Then clients,
  // then the state machine and Paxos, then the network.
  metrics_http_.reset();
  front_door_.reset();
  while (!actors_.empty()) actors_.pop_back();
  snapshot_writer_.reset();
  paxos_.reset();
  control_.reset();
  applier_control_.reset();
  peer_link_.reset();
  if (zap_) {
    zap_->remove_policy(peer_zap_domain(config_.inproc_namespace));
    zap_->remove_policy(client_zap_domain(config_.inproc_namespace));
  }
}

Result<std::unique_ptr<Node>> Node::start(zmq::context_t& ctx, NodeConfig config) {
  if (config.contact) {
    const MemberEntry* me = config.contact->entries.empty() ? nullptr
                                                            : config.contact->latest().find(config.self);
    if (me == nullptr || me->peer_endpoint.empty()) {
      return Error{"member " + std::to_string(config.self) + " is not in the configuration it was given"};
    }
  } else {
    const std::size_t n = config.members.size();
    if (n == 0 || n > kMaxClusterSize) return Error{"a cluster has 1 to 63 nodes"};
    if (config.self >= n) return Error{"node id is not in the cluster"};
  }

  std::unique_ptr<Node> node(new Node(std::move(config)));
  const NodeConfig& c = node->config_;
  const NodeId self = c.self;
  const std::string& ns = c.inproc_namespace;
  const std::string name = c.self_name();
  // The lines of the start, on the caller's thread.
  const log::ThreadSource log_source({name, "node"});
  // By member id. A member that joined later knows the members from its
  // contact configuration; the ids in between may be gone (left empty): its
  // configuration comes from the snapshot it installs, never from these.
  std::vector<std::string> names;
  std::vector<std::string> endpoints;
  if (c.contact) {
    for (const MemberEntry& m : c.contact->latest().members) {
      if (m.id >= names.size()) {
        names.resize(m.id + 1);
        endpoints.resize(m.id + 1);
      }
      names[m.id] = m.name;
      endpoints[m.id] = m.peer_endpoint;
    }
  } else {
    for (const Member& m : c.members) {
      names.push_back(m.name);
      endpoints.push_back(m.endpoint);
    }
  }

  node->metrics_->self = self;
  node->metrics_->peer_names = names;
  node->metrics_->start_time_unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();

  // Durable state first: a damaged data dir must stop the node before it
  // takes its ports. The files are read here; the logic is built from their
  // records by the one factory the simulator uses too (actors/node).
  const bool kv = !c.client_endpoint.empty();
  NodeSpec spec{.self = self,
                .names = names,
                .peer_endpoints = endpoints,
                .joining = c.joining,
                .contact = c.joining ? c.contact : std::nullopt,
                .name = c.self_name(),
                .kv = kv,
                .seed = c.seed,
                .member_incarnation = c.member_incarnation,
                .initial_round = c.initial_round,
                .proposer = c.proposer_options,
                .learner = {.forget_with_majority = kv},
                .applier = {.cluster_id = c.cluster_id,
                            .fault_injection = c.fault_injection,
                            .hole_timeout = c.hole_timeout,
                            .snapshot_every = c.snapshot_every,
                            .max_in_flight = c.pipeline,
                            .watch = {.history_events = c.watch_history_revisions,
                                      .history_bytes = c.watch_history_bytes,
                                      .progress_interval = c.watch_progress_interval}}};
  StoredState stored;
  std::unique_ptr<SegmentedLog> acceptor_log;
  std::unique_ptr<SegmentedLog> decided_log;
  const auto recovery_started = std::chrono::steady_clock::now();
  auto elapsed_ms = [&recovery_started] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 recovery_started)
        .count();
  };
  LogOpenReport acceptor_report;
  const std::string decided_dir = c.data_dir + "/decided";
  if (!c.data_dir.empty()) {
    stored.durable = true;
    stored.acceptor_where = c.data_dir + "/acceptor";
    stored.decided_where = decided_dir;
    stored.snapshot_where = c.data_dir + "/snapshot";
    Result<std::unique_ptr<SegmentedLog>> opened = SegmentedLog::open(
        stored.acceptor_where, "acceptor",
        [&stored](std::string_view r) { stored.acceptor_records.emplace_back(r); }, &acceptor_report);
    if (!opened.ok()) return Error{opened.error()};
    acceptor_log = std::move(opened.value());
    // The decided log is a cache of what the durable acceptors hold: when it
    // is damaged, start it afresh rather than refuse to start.
    Result<std::unique_ptr<SegmentedLog>> decided = SegmentedLog::open(
        decided_dir, "decided",
        [&stored](std::string_view r) { stored.decided_records.emplace_back(r); }, nullptr);
    if (!decided.ok()) {
      log::warn(decided.error() + "; starting that log afresh (the acceptors hold every "
                "chosen value)");
      stored.decided_records.clear();
    } else {
      decided_log = std::move(decided.value());
    }
    if (kv) {
      Result<FileRead> snap = read_checked_file(stored.snapshot_where);
      if (!snap.ok()) return Error{snap.error()};
      if (snap->found) stored.snapshot = std::move(snap->bytes);
      const std::string dir = c.data_dir;
      node->snapshot_writer_ =
          std::make_unique<SnapshotWriter>(ctx, c.inproc_namespace, self, dir, name,
                                           node->metrics_.get());
      spec.applier.save_snapshot = [writer = node->snapshot_writer_.get()](
                                       InstanceId applied_below, std::string bytes) {
        writer->save(applied_below, std::move(bytes));
      };
      spec.applier.data_dir_bytes = [dir] { return directory_bytes(dir); };
    }
  }
  const std::size_t snapshot_bytes = stored.snapshot ? stored.snapshot->size() : 0;
  Result<NodeLogic> built = build_node_logic(spec, stored);
  if (!built.ok()) return Error{built.error()};
  NodeLogic& logic = built.value();
  stored = StoredState{};  // the records are in the logic now
  if (!c.data_dir.empty()) {
    if (!logic.decided_log_error.empty() || !decided_log) {
      if (!logic.decided_log_error.empty()) {
        log::warn(logic.decided_log_error + "; starting that log afresh (the acceptors "
                  "hold every chosen value)");
      }
      decided_log.reset();
      std::error_code ignored;
      std::filesystem::remove_all(decided_dir, ignored);
      Result<std::unique_ptr<SegmentedLog>> fresh =
          SegmentedLog::open(decided_dir, "decided", [](std::string_view) {}, nullptr);
      if (!fresh.ok()) return Error{fresh.error()};
      decided_log = std::move(fresh.value());
    }
    if (acceptor_report.records > 0) {
      log::info("read the acceptor log",
                {{"records", acceptor_report.records},
                 {"instances_held", logic.acceptor->instances_held()},
                 {"elapsed_ms", elapsed_ms()}});
    }
    if (acceptor_report.torn_bytes > 0) {
      log::warn("cut a torn write off the acceptor log (a crash during a write; nothing that "
                "was acknowledged is lost)",
                {{"bytes", acceptor_report.torn_bytes}, {"file", acceptor_report.torn_file}});
    }
    if (logic.applier && snapshot_bytes > 0) {
      log::info("loaded the snapshot",
                {{"bytes", snapshot_bytes},
                 {"keys", logic.applier->data().size()},
                 {"instance", logic.applier->applied_below()},
                 {"elapsed_ms", elapsed_ms()}});
    }
    if (logic.learner->instances_held() > 0) {
      log::info("read the decided log: instances to apply again",
                {{"instances", logic.learner->instances_held()},
                 {"up_to", logic.learner->decided_below()},
                 {"elapsed_ms", elapsed_ms()}});
    }
  }

  const TransportSecurity* security = c.security.get();
  if (security != nullptr) {
    Result<std::shared_ptr<ZapHandler>> zap = ZapHandler::for_context(ctx);
    if (!zap.ok()) return Error{zap.error()};
    node->zap_ = std::move(zap.value());
    // The peer link replaces this with its configurations' keys at once.
    register_policies(*node->zap_, *security, member_keys_of_list(*security), ns,
                      /*client_port=*/kv);
    // zap_ outlives the metrics endpoint, which is stopped first.
    node->metrics_->auth_failures = [zap = node->zap_.get()] { return zap->refused(); };
  }
  // The peer link starts from the actors' configurations; a Paxos-only
  // node's fixed one has no endpoints: those of the member list.
  ConfigHistory link_config = logic.config;
  for (ConfigAt& e : link_config.entries) {
    for (MemberEntry& m : e.config.members) {
      if (m.peer_endpoint.empty() && m.id < endpoints.size()) m.peer_endpoint = endpoints[m.id];
    }
  }
  try {
    node->peer_link_ = std::make_unique<PeerLinkThread>(ctx, ns, self, link_config,
                                                        c.peer_listen_endpoint(), c.cluster_id,
                                                        logic.link_seed, *node->traffic_,
                                                        security, node->zap_.get(),
                                                        /*client_port=*/kv, name,
                                                        node->metrics_.get());
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen for peers on " + c.peer_listen_endpoint() + ": " + e.what() +
                     " (is another kvpaxosd using that address?)",
                 listen_error_kind(e)};
  }
  if (!c.client_endpoint.empty()) {
    try {
      node->front_door_ = std::make_unique<FrontDoorThread>(
          ctx, ns, self, c.client_listen_endpoint(), c.fault_injection, security, name,
          node->metrics_.get());
    } catch (const zmq::error_t& e) {
      return Error{"cannot listen for clients on " + c.client_listen_endpoint() + ": " + e.what() +
                       " (is another kvpaxosd using that address?)",
                   listen_error_kind(e)};
    }
  }

  NodeMetrics* metrics = node->metrics_.get();
  node->actors_.push_back(std::make_unique<ActorThread>(
      ctx, ns, self, Actor::acceptor, std::move(logic.acceptor), name, std::move(acceptor_log),
      /*to_disk=*/true, metrics));
  node->actors_.push_back(std::make_unique<ActorThread>(
      ctx, ns, self, Actor::proposer, std::move(logic.proposer), name, nullptr, true, metrics));
  // The decided log is written, not fsynced (see Learner::recover).
  node->actors_.push_back(std::make_unique<ActorThread>(
      ctx, ns, self, Actor::learner, std::move(logic.learner), name, std::move(decided_log),
      /*to_disk=*/false, metrics));
  if (kv) {
    node->actors_.push_back(std::make_unique<ActorThread>(
        ctx, ns, self, Actor::applier, std::move(logic.applier), name, nullptr, true, metrics));
  } else {
    node->paxos_ = std::make_unique<PaxosPeer>(ctx, ns, self);
  }

  if (!c.metrics_endpoint.empty()) {
    try {
      node->metrics_http_ = std::make_unique<MetricsHttpThread>(ctx, c.metrics_endpoint, *metrics);
    } catch (const zmq::error_t& e) {
      return Error{"cannot listen for metrics on " + c.metrics_endpoint + ": " + e.what() +
                       " (is another process using that address?)",
                   listen_error_kind(e)};
    }
  }

  for (Actor to : {Actor::peer_link, Actor::applier}) {
    if (to == Actor::applier && !kv) continue;
    auto& socket = to == Actor::applier ? node->applier_control_ : node->control_;
    socket = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
    socket->set(zmq::sockopt::linger, 0);
    socket->connect(inproc_endpoint(ns, self, to));
  }
  return node;
}

std::string Node::metrics_endpoint() const {
  return metrics_http_ ? metrics_http_->endpoint() : std::string();
}

std::uint64_t Node::removed_epoch() const {
  return traffic_->removed_epoch.load(std::memory_order_acquire);
}

InstanceId Node::removed_from() const {
  return traffic_->removed_from.load(std::memory_order_relaxed);
}

void Node::send_control(Actor to, const std::string& body) {
  const std::lock_guard<std::mutex> lock(control_mu_);
  zmq::socket_t* socket = to == Actor::applier ? applier_control_.get() : control_.get();
  if (socket == nullptr) return;  // a Paxos-only node has no applier
  const FrameHeader h{{config_.self, to}, {config_.self, Actor::control}, 0, 0};
  send_frames(*socket, encode_header(h), body, /*wait=*/true);
}

void Node::step_down() { send_control(Actor::applier, encode(StepDown{})); }

void Node::set_reachable(const std::vector<NodeId>& peers) {
  FaultRequest r{.set_reach = true, .reach_all = false};
  for (NodeId p : peers) r.reach.push_back(config_.members.at(p).name);
  send_control(Actor::peer_link, encode(FaultFromClient{{}, std::move(r)}));
}

void Node::reach_all() {
  send_control(Actor::peer_link,
               encode(FaultFromClient{{}, FaultRequest{.set_reach = true, .reach_all = true}}));
}

void Node::set_drop_rate(double rate) {
  send_control(Actor::peer_link,
               encode(FaultFromClient{{}, FaultRequest{.set_drop = true, .drop_rate = rate}}));
}

namespace {

// A DEALER to a peer port for an exchange before the node runs: nothing
// lingers at close, nothing queues for a peer not connected yet, and it
// reconnects quickly.
std::unique_ptr<zmq::socket_t> startup_dealer(zmq::context_t& ctx) {
  auto d = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  d->set(zmq::sockopt::linger, 0);
  d->set(zmq::sockopt::immediate, 1);
  d->set(zmq::sockopt::reconnect_ivl, 50);
  return d;
}

// A DEALER per peer for a node that is not running yet (survey, join).
std::vector<std::unique_ptr<zmq::socket_t>> connect_to_peers(zmq::context_t& ctx,
                                                             const NodeConfig& config) {
  std::vector<std::unique_ptr<zmq::socket_t>> dealers(config.members.size());
  for (NodeId peer = 0; peer < config.members.size(); ++peer) {
    if (peer == config.self) continue;
    dealers[peer] = startup_dealer(ctx);
    dealers[peer]->set(zmq::sockopt::routing_id,
                       link_identity(config.cluster_id, config.self,
                                     static_cast<std::uint32_t>(std::random_device{}())));
    if (config.security) {
      const std::vector<std::string>& keys = config.security->peer_keys.at(peer);
      if (keys.empty()) {  // named in --cluster, its key only in the configuration
        dealers[peer].reset();
        continue;
      }
      make_curve_client(*dealers[peer], config.security->node_key, keys.front());
    }
    dealers[peer]->connect(config.members[peer].endpoint);
  }
  return dealers;
}

// This node's peer port while the node itself is not running yet. With
// keys, `zap` holds the ZAP handler for as long as the port is open.
Result<std::unique_ptr<zmq::socket_t>> listen_on_peer_port(zmq::context_t& ctx,
                                                           const NodeConfig& config,
                                                           const std::string& hint,
                                                           std::shared_ptr<ZapHandler>& zap) {
  const std::string& endpoint = config.peer_listen_endpoint();
  auto router = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
  router->set(zmq::sockopt::linger, 0);
  router->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxPeerFrameBytes));
  if (config.security) {
    Result<std::shared_ptr<ZapHandler>> handler = ZapHandler::for_context(ctx);
    if (!handler.ok()) return Error{handler.error()};
    zap = std::move(handler.value());
    register_policies(*zap, *config.security, member_keys_of_list(*config.security),
                      config.inproc_namespace, /*client_port=*/false);
    make_curve_server(*router, config.security->node_key,
                      peer_zap_domain(config.inproc_namespace));
  }
  try {
    router->bind(endpoint);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen for peers on " + endpoint + ": " + e.what() + " (" + hint + ")",
                 listen_error_kind(e)};
  }
  return router;
}

struct PeerMessage {
  FrameHeader header;
  zmq::message_t body;
};

// Waits up to 50 ms for one well-formed frame from another member.
std::optional<PeerMessage> next_peer_message(zmq::socket_t& router, const NodeConfig& config) {
  zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(50));
  if ((items[0].revents & ZMQ_POLLIN) == 0) return std::nullopt;
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
    return std::nullopt;
  }
  if (frames.size() != 3) return std::nullopt;
  Result<FrameHeader> h = decode_header(frames[1].to_string_view());
  if (!h.ok() || h->from.node >= config.members.size() || h->from.node == config.self) {
    return std::nullopt;
  }
  // With keys, the sender is the node whose key the connection came with.
  if (config.security && authenticated_node(frames[1]) != h->from.node) return std::nullopt;
  return PeerMessage{h.value(), std::move(frames[2])};
}

// Sends what a survey asked for: from this node's peer link, unstamped (the
// node has no progress yet), never blocking.
void send_to_peers(std::vector<std::unique_ptr<zmq::socket_t>>& dealers, NodeId self,
                   Outbox& out) {
  for (const Outbound& o : out) {
    const FrameHeader h{o.to, {self, Actor::peer_link}, 0, 0};
    send_frames(*dealers.at(o.to.node), encode_header(h), encode(o.body), /*wait=*/false);
  }
  out.clear();
}

// Runs `survey` (a FirstStartSurvey or a JoinSurvey) on the clock until it
// is done: sends what it asks for, reports its progress lines, and hands
// each frame from another member to `on_frame`.
template <typename Survey, typename OnFrame>
void run_until_done(Survey& survey, zmq::socket_t& router,
                    std::vector<std::unique_ptr<zmq::socket_t>>& dealers,
                    const NodeConfig& config,
                    const std::function<void(const std::string&)>& progress, OnFrame on_frame) {
  Outbox out;
  for (;;) {
    const Time now = Clock::now();
    survey.tick(now, out);
    if (survey.done()) return;
    send_to_peers(dealers, config.self, out);
    if (std::optional<std::string> line = survey.progress_line(now)) progress(*line);
    if (std::optional<PeerMessage> m = next_peer_message(router, config)) on_frame(*m);
  }
}

}  // namespace

Result<PeerSurvey> survey_peers(zmq::context_t& ctx, const NodeConfig& config, Duration wait,
                                const std::function<void(const std::string&)>& progress) {
  const std::string& endpoint = config.peer_listen_endpoint();
  std::shared_ptr<ZapHandler> zap;
  Result<std::unique_ptr<zmq::socket_t>> listening =
      listen_on_peer_port(ctx, config, "is another kvpaxosd using that address?", zap);
  if (!listening.ok()) return Error{listening.error()};
  zmq::socket_t& router = *listening.value();
  std::vector<std::unique_ptr<zmq::socket_t>> dealers = connect_to_peers(ctx, config);
  FirstStartSurvey survey(config.self, config.members, wait, Clock::now());
  run_until_done(survey, router, dealers, config, progress,
                 [&survey](const PeerMessage& m) { survey.handle(m.header); });
  router.unbind(endpoint);
  return survey.result();
}

Result<JoinBarrier> gather_join_barrier(zmq::context_t& ctx, const NodeConfig& config,
                                        Duration timeout,
                                        const std::function<void(const std::string&)>& progress) {
  const std::string& endpoint = config.peer_listen_endpoint();
  std::shared_ptr<ZapHandler> zap;
  Result<std::unique_ptr<zmq::socket_t>> listening = listen_on_peer_port(
      ctx, config, "is this node still running? stop it before rebuilding it", zap);
  if (!listening.ok()) return Error{listening.error()};
  zmq::socket_t& router = *listening.value();
  std::vector<std::unique_ptr<zmq::socket_t>> dealers = connect_to_peers(ctx, config);
  JoinSurvey survey(config.self, bootstrap_history(config.members), timeout, Clock::now());
  run_until_done(survey, router, dealers, config, progress, [&survey](const PeerMessage& m) {
    Result<Body> body = decode(m.body.to_string_view());
    if (body.ok()) survey.handle(m.header.from, body.value());
  });
  router.unbind(endpoint);
  return survey.result();
}

Result<MemberInfo> ask_membership(zmq::context_t& ctx, const std::string& name,
                                  const std::string& endpoint,
                                  const std::vector<Member>& given_seeds, Duration timeout,
                                  const std::function<void(const std::string&)>& progress,
                                  const TransportSecurity* security) {
  std::vector<Member> seeds;
  std::vector<std::unique_ptr<zmq::socket_t>> dealers;
  std::string keyless;
  for (const Member& seed : given_seeds) {
    // The seed's key from --peer-keys; this node's own key is the one kvctl
    // member add put into its configuration entry.
    const std::vector<std::string> keys =
        security != nullptr ? security->key_files(seed.name) : std::vector<std::string>{};
    if (security != nullptr && keys.empty()) {
      keyless += (keyless.empty() ? "" : ", ") + seed.name;
      continue;
    }
    std::unique_ptr<zmq::socket_t> d = startup_dealer(ctx);
    d->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxPeerFrameBytes));
    if (security != nullptr) make_curve_client(*d, security->node_key, keys.front());
    d->connect(seed.endpoint);
    seeds.push_back(seed);
    dealers.push_back(std::move(d));
  }
  if (seeds.empty()) {
    return Error{keyless.empty() ? "no other member in --cluster to ask"
                                 : "--peer-keys holds the public key of no member to ask (none "
                                   "for " + keyless + "); copy the current members' .key files "
                                   "there"};
  }
  const std::string header = encode_header(
      FrameHeader{{kNoNode, Actor::peer_link}, {kNoNode, Actor::peer_link}, 0, 0, 0});
  const std::string query = encode(MemberQuery{name, endpoint});
  std::vector<std::string> refusals(seeds.size());
  const Time started = Clock::now();
  std::optional<Time> all_refused_since;
  Time next_ask = started;
  Time next_line = started + std::chrono::seconds(1);
  auto summary = [&] {
    std::string out;
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      out += (out.empty() ? "" : "; ") + seeds[i].name + ": " +
             (refusals[i].empty() ? "no answer" : refusals[i]);
    }
    return out;
  };
  for (;;) {
    const Time now = Clock::now();
    if (now >= next_ask) {
      for (auto& d : dealers) send_frames(*d, header, query, /*wait=*/false);
      next_ask = now + std::chrono::milliseconds(500);
    }
    if (now >= next_line) {
      progress("asking who " + name + " is: " + summary());
      next_line = now + std::chrono::seconds(1);
    }
    const bool all_refused = std::all_of(refusals.begin(), refusals.end(),
                                         [](const std::string& r) { return !r.empty(); });
    if (all_refused && !all_refused_since) all_refused_since = now;
    if ((all_refused_since && now - *all_refused_since >= std::chrono::seconds(3)) ||
        now - started >= timeout) {
      return Error{"no member of the cluster said who " + name + " is (" + summary() + ")" +
                   (all_refused ? "" : "; is the cluster running, and was " + name +
                                           " added (kvctl member add)?")};
    }
    std::vector<zmq::pollitem_t> items;
    for (auto& d : dealers) items.push_back({d->handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
    for (std::size_t i = 0; i < dealers.size(); ++i) {
      if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(*dealers[i], std::back_inserter(frames), zmq::recv_flags::dontwait) ||
          frames.size() != 2) {
        continue;
      }
      Result<Body> body = decode(frames[1].to_string_view());
      const MemberInfo* info = body.ok() ? std::get_if<MemberInfo>(&body.value()) : nullptr;
      if (info == nullptr) continue;
      if (info->error.empty()) {
        progress(seeds[i].name + " says " + name + " is member " + std::to_string(info->id) +
                 " (epoch " + std::to_string(info->history.latest().epoch) + ")");
        return *info;
      }
      refusals[i] = info->error;
    }
  }
}

Result<bool> write_vote_floor(const std::string& data_dir, InstanceId vote_floor,
                              std::uint64_t max_round) {
  Result<DurableAcceptor> acceptor = open_durable_acceptor(data_dir + "/acceptor", nullptr);
  if (!acceptor.ok()) return Error{acceptor.error()};
  if (vote_floor > 0 || max_round > 0) (*acceptor)->start_rebuilt(vote_floor, max_round);
  return acceptor->sync();
}

PaxosPeer& Node::paxos() { return *paxos_; }

std::string Node::client_endpoint() const { return front_door_ ? front_door_->endpoint() : ""; }

}  // namespace kvpaxos

#include "actors/runtime/node.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <malloc.h>
#include <optional>

#include <zmq_addon.hpp>

#include "actors/core/quorum.hpp"
#include "actors/paxos/acceptor.hpp"
#include "actors/kv/applier.hpp"
#include "actors/paxos/learner.hpp"
#include "actors/runtime/logger.hpp"
#include "actors/runtime/paxos_peer.hpp"
#include "actors/runtime/runner.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/security/zap_handler.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

namespace {

std::unique_ptr<Proposer> make_proposer(const NodeConfig& c, bool kv) {
  ProposerOptions options = c.proposer_options;
  // In the KV service every node's applier proposes the same next instances,
  // and the applier's leader-by-authorship rule settles who proposes: a node
  // falling back to basic Paxos there would only fight the leader instance
  // by instance (500 ms stalls in bench/compare). The fallback is for
  // proposers that decide different instances (the PaxosPeer API).
  if (kv) options.rival_quiet = Duration::zero();
  auto proposer = std::make_unique<Proposer>(c.self, c.members.size(),
                                             c.seed * 104729 + c.self, options);
  proposer->raise_round(c.initial_round);
  return proposer;
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
    : config_(std::move(config)), traffic_(std::make_unique<PeerTrafficStats>()) {
  tune_allocator();
}

Node::~Node() {
  // Clients first, then the state machine and Paxos, then the network.
  front_door_.reset();
  while (!actors_.empty()) actors_.pop_back();
  snapshot_writer_.reset();
  paxos_.reset();
  control_.reset();
  peer_link_.reset();
  if (zap_) {
    zap_->remove_policy(peer_zap_domain(config_.inproc_namespace));
    zap_->remove_policy(client_zap_domain(config_.inproc_namespace));
  }
}

Result<std::unique_ptr<Node>> Node::start(zmq::context_t& ctx, NodeConfig config) {
  const std::size_t n = config.members.size();
  if (n == 0 || n > kMaxClusterSize) return Error{"a cluster has 1 to 63 nodes"};
  if (config.self >= n) return Error{"node id is not in the cluster"};

  std::unique_ptr<Node> node(new Node(std::move(config)));
  const NodeConfig& c = node->config_;
  const NodeId self = c.self;
  const std::string& ns = c.inproc_namespace;
  const std::string prefix = c.members[self].name + " ";
  std::vector<std::string> names;
  std::vector<std::string> endpoints;
  for (const Member& m : c.members) {
    names.push_back(m.name);
    endpoints.push_back(m.endpoint);
  }

  // Durable state first: a damaged data dir must stop the node before it
  // takes its ports.
  std::unique_ptr<Acceptor> acceptor = std::make_unique<Acceptor>(self, n);
  std::unique_ptr<Applier> applier;
  const bool kv = !c.client_endpoint.empty();
  ApplierOptions applier_options{.name = c.members[self].name,
                                 .fault_injection = c.fault_injection,
                                 .hole_timeout = c.hole_timeout,
                                 .snapshot_every = c.snapshot_every,
                                 .max_in_flight = c.pipeline,
                                 .nodes = n};
  InstanceId first_instance = 0;
  const auto recovery_started = std::chrono::steady_clock::now();
  auto took = [&recovery_started] {
    const std::chrono::duration<double> d = std::chrono::steady_clock::now() - recovery_started;
    char text[32];
    std::snprintf(text, sizeof text, "%.2f s", d.count());
    return std::string(text);
  };
  if (!c.data_dir.empty()) {
    LogOpenReport report;
    Result<std::unique_ptr<Acceptor>> opened =
        Acceptor::open(c.data_dir + "/acceptor", &report, self, n);
    if (!opened.ok()) return Error{opened.error()};
    acceptor = std::move(opened.value());
    if (report.records > 0) {
      log::info(prefix + "acceptor log: " + std::to_string(report.records) + " records, " +
                std::to_string(acceptor->instances_held()) + " instances held, read in " +
                took());
    }
    if (report.torn_bytes > 0) {
      log::warn(prefix + "cut a torn write of " + std::to_string(report.torn_bytes) +
                " bytes off " + report.torn_file + " (a crash during a write; nothing that was "
                "acknowledged is lost)");
    }
    if (kv) {
      const std::string dir = c.data_dir;
      node->snapshot_writer_ = std::make_unique<SnapshotWriter>(ctx, c.inproc_namespace, self, dir);
      applier_options.save_snapshot = [writer = node->snapshot_writer_.get()](
                                          InstanceId applied_below, std::string bytes) {
        writer->save(applied_below, std::move(bytes));
      };
      applier_options.data_dir_bytes = [dir] { return directory_bytes(dir); };
    }
  }
  if (kv) {
    applier = std::make_unique<Applier>(self, std::move(applier_options));
    if (!c.data_dir.empty()) {
      Result<FileRead> snap = read_checked_file(c.data_dir + "/snapshot");
      if (!snap.ok()) return Error{snap.error()};
      if (snap->found) {
        Result<bool> restored = applier->restore(snap->bytes);
        if (!restored.ok()) return Error{c.data_dir + "/snapshot: " + restored.error()};
        first_instance = applier->applied_below();
        log::info(prefix + "snapshot: " + std::to_string(snap->bytes.size()) + " bytes, " +
                  std::to_string(applier->data().size()) + " keys, instances below " +
                  std::to_string(first_instance) + "; loaded by " + took());
      }
    }
  }

  const LearnerOptions learner_options{.deliver_to_applier = kv,
                                       .first_instance = first_instance,
                                       .forget_with_majority = kv};
  auto learner = std::make_unique<Learner>(self, n, learner_options);
  if (!c.data_dir.empty()) {
    // The decided log is a cache of what the durable acceptors hold: when it
    // is damaged, start it afresh rather than refuse to start.
    const std::string decided_dir = c.data_dir + "/decided";
    Result<bool> opened = learner->open_log(decided_dir, nullptr);
    if (!opened.ok()) {
      log::warn(prefix + opened.error() + "; starting that log afresh (the acceptors hold "
                "every chosen value)");
      std::error_code ignored;
      std::filesystem::remove_all(decided_dir, ignored);
      learner = std::make_unique<Learner>(self, n, learner_options);
      opened = learner->open_log(decided_dir, nullptr);
      if (!opened.ok()) return Error{opened.error()};
    }
    if (learner->instances_held() > 0) {
      log::info(prefix + "decided log: " + std::to_string(learner->instances_held()) +
                " instances to apply again, up to " + std::to_string(learner->decided_below()) +
                "; read by " + took());
    }
  }

  const TransportSecurity* security = c.security.get();
  if (security != nullptr) {
    Result<std::shared_ptr<ZapHandler>> zap = ZapHandler::for_context(ctx);
    if (!zap.ok()) return Error{zap.error()};
    node->zap_ = std::move(zap.value());
    register_policies(*node->zap_, *security, ns, /*client_port=*/kv);
  }
  try {
    node->peer_link_ = std::make_unique<PeerLinkThread>(
        ctx, ns, self, names, endpoints, c.seed * 7919 + 1, *node->traffic_, security, prefix);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen for peers on " + endpoints[self] + ": " + e.what() +
                 " (is another kvpaxosd using that address?)"};
  }
  if (!c.client_endpoint.empty()) {
    try {
      node->front_door_ = std::make_unique<FrontDoorThread>(
          ctx, ns, self, c.client_endpoint, c.fault_injection, security, prefix);
    } catch (const zmq::error_t& e) {
      return Error{"cannot listen for clients on " + c.client_endpoint + ": " + e.what() +
                   " (is another kvpaxosd using that address?)"};
    }
  }

  // A restarted proposer must never reuse a ballot it used before the
  // restart (a late Accept at it could meet a new value at the same ballot):
  // it starts above every round its own durable acceptor has seen, which
  // includes every range it campaigned for (its own acceptor is asked first).
  std::unique_ptr<Proposer> proposer = make_proposer(c, kv);
  proposer->raise_round(acceptor->join_info().max_round);
  node->actors_.push_back(
      std::make_unique<ActorThread>(ctx, ns, self, Actor::acceptor, std::move(acceptor), prefix));
  node->actors_.push_back(std::make_unique<ActorThread>(ctx, ns, self, Actor::proposer,
                                                        std::move(proposer), prefix));
  node->actors_.push_back(
      std::make_unique<ActorThread>(ctx, ns, self, Actor::learner, std::move(learner), prefix));
  if (kv) {
    node->actors_.push_back(
        std::make_unique<ActorThread>(ctx, ns, self, Actor::applier, std::move(applier), prefix));
  } else {
    node->paxos_ = std::make_unique<PaxosPeer>(ctx, ns, self);
  }

  node->control_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
  node->control_->set(zmq::sockopt::linger, 0);
  node->control_->connect(inproc_endpoint(ns, self, Actor::peer_link));
  return node;
}

void Node::send_control(Actor to, const std::string& body) {
  const std::lock_guard<std::mutex> lock(control_mu_);
  const FrameHeader h{{config_.self, to}, {config_.self, Actor::control}, 0, 0};
  send_frames(*control_, encode_header(h), body, /*wait=*/true);
}

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

// A DEALER per peer for a node that is not running yet (survey, join).
std::vector<std::unique_ptr<zmq::socket_t>> connect_to_peers(zmq::context_t& ctx,
                                                             const NodeConfig& config) {
  std::vector<std::unique_ptr<zmq::socket_t>> dealers(config.members.size());
  for (NodeId peer = 0; peer < config.members.size(); ++peer) {
    if (peer == config.self) continue;
    dealers[peer] = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    dealers[peer]->set(zmq::sockopt::linger, 0);
    dealers[peer]->set(zmq::sockopt::immediate, 1);
    dealers[peer]->set(zmq::sockopt::reconnect_ivl, 50);
    if (config.security) {
      make_curve_client(*dealers[peer], config.security->node_key,
                        config.security->peer_keys.at(peer).front());
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
  const std::string& endpoint = config.members.at(config.self).endpoint;
  auto router = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
  router->set(zmq::sockopt::linger, 0);
  router->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxPeerFrameBytes));
  if (config.security) {
    Result<std::shared_ptr<ZapHandler>> handler = ZapHandler::for_context(ctx);
    if (!handler.ok()) return Error{handler.error()};
    zap = std::move(handler.value());
    register_policies(*zap, *config.security, config.inproc_namespace, /*client_port=*/false);
    make_curve_server(*router, config.security->node_key,
                      peer_zap_domain(config.inproc_namespace));
  }
  try {
    router->bind(endpoint);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen for peers on " + endpoint + ": " + e.what() + " (" + hint + ")"};
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

}  // namespace

Result<PeerSurvey> survey_peers(zmq::context_t& ctx, const NodeConfig& config, Duration wait,
                                const std::function<void(const std::string&)>& progress) {
  const std::string& endpoint = config.members.at(config.self).endpoint;
  const std::size_t n = config.members.size();
  std::shared_ptr<ZapHandler> zap;
  Result<std::unique_ptr<zmq::socket_t>> listening =
      listen_on_peer_port(ctx, config, "is another kvpaxosd using that address?", zap);
  if (!listening.ok()) return Error{listening.error()};
  zmq::socket_t& router = *listening.value();
  std::vector<std::unique_ptr<zmq::socket_t>> dealers = connect_to_peers(ctx, config);
  PeerSurvey survey;
  std::vector<bool> heard(n, false);
  const std::size_t others_needed = others_needed_for_majority(n);
  const Time start = Clock::now();
  Time next_beat = start;
  Time next_progress = start + std::chrono::seconds(1);
  while (Clock::now() - start < wait && survey.heard < others_needed &&
         survey.furthest_decided == 0) {
    const Time now = Clock::now();
    if (now >= next_beat) {
      // Surveying nodes hear each other: a new cluster starts all at once.
      for (NodeId peer = 0; peer < n; ++peer) {
        if (!dealers[peer]) continue;
        const FrameHeader h{{peer, Actor::peer_link}, {config.self, Actor::peer_link}, 0, 0};
        send_frames(*dealers[peer], encode_header(h), encode(Heartbeat{}), /*wait=*/false);
      }
      next_beat = now + std::chrono::milliseconds(100);
    }
    if (now >= next_progress) {
      std::string missing;
      for (NodeId peer = 0; peer < n; ++peer) {
        if (peer == config.self || heard[peer]) continue;
        missing += (missing.empty() ? "" : ", ") + config.members[peer].name;
      }
      progress("heard " + std::to_string(survey.heard) + " of the " + std::to_string(n - 1) +
               " other nodes (" + std::to_string(others_needed) + " needed); waiting for " +
               missing);
      next_progress = now + std::chrono::seconds(1);
    }
    std::optional<PeerMessage> m = next_peer_message(router, config);
    if (!m) continue;
    const FrameHeader* h = &m->header;
    if (!heard[h->from.node]) {
      heard[h->from.node] = true;
      ++survey.heard;
    }
    const InstanceId progress_seen = std::max({h->decided_below, h->done_below, h->forget_below});
    if (progress_seen > survey.furthest_decided) {
      survey.furthest_decided = progress_seen;
      survey.furthest_name = config.members[h->from.node].name;
    }
  }
  survey.needed = others_needed;
  router.unbind(endpoint);
  return survey;
}

Result<JoinBarrier> gather_join_barrier(zmq::context_t& ctx, const NodeConfig& config,
                                        Duration timeout,
                                        const std::function<void(const std::string&)>& progress) {
  const NodeId self = config.self;
  const std::size_t n = config.members.size();
  const std::string& endpoint = config.members.at(self).endpoint;
  std::shared_ptr<ZapHandler> zap;
  Result<std::unique_ptr<zmq::socket_t>> listening = listen_on_peer_port(
      ctx, config, "is this node still running? stop it before rebuilding it", zap);
  if (!listening.ok()) return Error{listening.error()};
  zmq::socket_t& router = *listening.value();
  std::vector<std::unique_ptr<zmq::socket_t>> dealers = connect_to_peers(ctx, config);
  const Actor asked[] = {Actor::acceptor, Actor::proposer};
  // answered[peer][0] acceptor, [1] proposer
  std::vector<std::array<bool, 2>> answered(n, {false, false});
  answered[self] = {true, true};
  JoinBarrier barrier;
  auto missing = [&] {
    std::string names;
    for (NodeId peer = 0; peer < n; ++peer) {
      if (answered[peer][0] && answered[peer][1]) continue;
      names += (names.empty() ? "" : ", ") + config.members[peer].name + " (" +
               config.members[peer].endpoint + ")";
    }
    return names;
  };
  const Time start = Clock::now();
  Time next_ask = start;
  Time next_progress = start + std::chrono::seconds(1);
  for (;;) {
    const std::string waiting = missing();
    if (waiting.empty()) break;
    const Time now = Clock::now();
    if (now - start > timeout) {
      router.unbind(endpoint);
      return Error{"no answer from " + waiting + " after " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                   "s; every other node must be up to rebuild this one (one that is down may be "
                   "the only other witness of what the lost data dir promised)"};
    }
    if (now >= next_progress) {
      progress("waiting for " + waiting);
      next_progress = now + std::chrono::seconds(1);
    }
    if (now >= next_ask) {
      for (NodeId peer = 0; peer < n; ++peer) {
        for (int a = 0; a < 2; ++a) {
          if (answered[peer][a]) continue;
          const FrameHeader h{{peer, asked[a]}, {self, Actor::peer_link}, 0, 0};
          send_frames(*dealers[peer], encode_header(h), encode(JoinQuery{}), /*wait=*/false);
        }
      }
      next_ask = now + std::chrono::milliseconds(200);
    }
    std::optional<PeerMessage> m = next_peer_message(router, config);
    if (!m) continue;
    const FrameHeader* h = &m->header;
    Result<Body> body = decode(m->body.to_string_view());
    if (!body.ok()) continue;
    if (std::holds_alternative<JoinQuery>(body.value())) {
      router.unbind(endpoint);
      return Error{config.members[h->from.node].name + " is being rebuilt at the same time; "
                   "rebuild one node at a time (stop one of the two --join runs, and start it "
                   "again once the other has caught up)"};
    }
    const auto* info = std::get_if<JoinInfo>(&body.value());
    if (info == nullptr) continue;  // Paxos traffic for the node this will be: not yet
    const int a = h->from.actor == Actor::acceptor ? 0 : h->from.actor == Actor::proposer ? 1 : -1;
    if (a < 0) continue;
    if (info->repairing) {
      router.unbind(endpoint);
      return Error{config.members[h->from.node].name + " was itself rebuilt and the log below "
                   "its vote floor is not yet forgotten by a majority; rebuilding a second node "
                   "now could leave an instance that no majority may vote in. Retry once "
                   "`kvctl status` shows its MIN at or above " +
                   std::to_string(info->instance_bound) + " (after the next snapshots; "
                   "writes make them come sooner)"};
    }
    answered[h->from.node][static_cast<std::size_t>(a)] = true;
    barrier.vote_floor = std::max(barrier.vote_floor, info->instance_bound);
    barrier.max_round = std::max(barrier.max_round, info->max_round);
  }
  router.unbind(endpoint);
  return barrier;
}

Result<bool> write_vote_floor(const std::string& data_dir, InstanceId vote_floor,
                              std::uint64_t max_round) {
  Result<std::unique_ptr<Acceptor>> acceptor = Acceptor::open(data_dir + "/acceptor", nullptr);
  if (!acceptor.ok()) return Error{acceptor.error()};
  if (vote_floor > 0 || max_round > 0) acceptor.value()->start_rebuilt(vote_floor, max_round);
  return acceptor.value()->sync();
}

PaxosPeer& Node::paxos() { return *paxos_; }

std::string Node::client_endpoint() const { return front_door_ ? front_door_->endpoint() : ""; }

}  // namespace kvpaxos

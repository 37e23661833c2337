#include "cmd/member_health.hpp"

#include <algorithm>

#include "actors/core/quorum.hpp"
#include "cmd/kv_output.hpp"

namespace kvpaxos {

bool is_reachable(const ClusterHealth& health, NodeId id) {
  const auto it = health.find(id);
  return it != health.end() && it->second.reachable;
}

InstanceId furthest_applied(const Config& config, const ClusterHealth& health) {
  InstanceId furthest = 0;
  for (const MemberEntry& m : config.members) {
    if (is_reachable(health, m.id)) furthest = std::max(furthest, health.at(m.id).applied_below);
  }
  return furthest;
}

std::optional<InstanceId> member_lag(const Config& config, const ClusterHealth& health, NodeId id) {
  if (!is_reachable(health, id)) return std::nullopt;
  const InstanceId furthest = furthest_applied(config, health);
  const InstanceId own = health.at(id).applied_below;
  return own >= furthest ? 0 : furthest - own;
}

std::string member_client_endpoint(const MemberEntry& m, const ClusterHealth& health) {
  if (!m.client_endpoint.empty()) return m.client_endpoint;
  const auto it = health.find(m.id);
  return it == health.end() ? std::string() : it->second.client_endpoint;
}

Config config_after(const Config& now, const MemberChange& change) {
  Config after = now;
  auto& members = after.members;
  const auto make_voter = [&](NodeId id) {
    for (MemberEntry& m : members) {
      if (m.id == id) m.role = MemberRole::voter;
    }
  };
  const auto drop = [&](NodeId id) {
    std::erase_if(members, [id](const MemberEntry& m) { return m.id == id; });
  };
  switch (change.kind) {
    case MemberChangeKind::promote: make_voter(change.target); break;
    case MemberChangeKind::remove: drop(change.target); break;
    case MemberChangeKind::replace:
      drop(change.target);
      make_voter(change.other);
      break;
    case MemberChangeKind::list:
    case MemberChangeKind::add_learner:
    case MemberChangeKind::update: break;
  }
  return after;
}

namespace {

// "n3 at 127.0.0.1:7203", or "n3 (no client address known)".
std::string where(const MemberEntry& m, const ClusterHealth& health) {
  const std::string endpoint = member_client_endpoint(m, health);
  if (endpoint.empty()) {
    return m.name + " (no client address in the configuration, and no --endpoints address "
           "answered as it)";
  }
  return m.name + " at " + address_of(endpoint);
}

}  // namespace

std::string live_majority_problem(const Config& after, const ClusterHealth& health) {
  const std::vector<NodeId> voters = after.voters();
  std::size_t live = 0;
  std::string silent;
  for (const NodeId id : voters) {
    if (is_reachable(health, id)) {
      ++live;
    } else {
      silent += (silent.empty() ? "" : ", ") + where(*after.find(id), health);
    }
  }
  if (voters.empty() || is_majority(live, voters.size())) return {};
  return "of the " + std::to_string(voters.size()) + " voters it would leave, " +
         std::to_string(live) + (live == 1 ? " answers" : " answer") +
         " kvctl, fewer than a majority (" + std::to_string(majority(voters.size())) +
         "); not answering: " + silent + "; bring them back first";
}

PromotionCheck promotion_check(const Config& config, const ClusterHealth& health, NodeId learner) {
  PromotionCheck check{.furthest = furthest_applied(config, health)};
  const MemberEntry* m = config.find(learner);
  if (m == nullptr) return check;  // the cluster refuses it with the reason
  check.endpoint = member_client_endpoint(*m, health);
  if (is_reachable(health, learner)) {
    check.applied_below = health.at(learner).applied_below;
    if (check.applied_below + kMaxPromoteLag >= check.furthest) return check;
    check.readiness = Readiness::behind;
    check.problem = promotion_progress(*m, check) + "; retry once it has caught up";
    return check;
  }
  if (check.endpoint.empty()) {
    check.readiness = Readiness::no_address;
    check.problem = m->name + " has no client address in the configuration, so kvctl cannot "
                    "tell whether it is caught up (member update " + m->name +
                    " --client-addr H:P, or name its address in --endpoints)";
    return check;
  }
  check.readiness = Readiness::not_answering;
  const auto it = health.find(learner);
  const std::string why = it == health.end() || it->second.error.empty() ? "" : " (" + it->second.error + ")";
  check.problem = promotion_progress(*m, check) + why +
                  "; start it with the kvpaxosd line `member add` printed";
  return check;
}

std::string promotion_progress(const MemberEntry& learner, const PromotionCheck& check) {
  if (check.readiness == Readiness::not_answering || check.readiness == Readiness::no_address) {
    return learner.name + " does not answer at " + address_of(check.endpoint);
  }
  return learner.name + " has applied " + std::to_string(check.applied_below) + " of " +
         std::to_string(check.furthest) + " instances";
}

StatusIdentity status_identity(const Config* config, const std::string& endpoint,
                               const StatusReply* reply) {
  StatusIdentity identity;
  const MemberEntry* m = nullptr;
  if (reply != nullptr) {
    identity.id = std::to_string(reply->node);
    if (config == nullptr) return identity;
    m = config->find(reply->node);
    if (m == nullptr) identity.role = "removed";
  } else if (config != nullptr) {
    const std::string address = address_of(endpoint);
    for (const MemberEntry& candidate : config->members) {
      if (!candidate.client_endpoint.empty() && address_of(candidate.client_endpoint) == address) {
        m = &candidate;
      }
    }
    if (m != nullptr) identity.id = std::to_string(m->id);
  }
  if (m != nullptr) identity.role = to_string(m->role);
  return identity;
}

}  // namespace kvpaxos

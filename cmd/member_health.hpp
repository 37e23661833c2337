// What kvctl found asking the members for their status, and the checks of
// `member promote`, `remove` and `replace` that rest on it: is the learner
// caught up, will the voters that remain have a live majority. Pure
// functions of a configuration and of what kvctl found; the asking is
// kvctl.cpp's (probe_health), so that these are unit-tested without sockets.
//
// "Reachable" is kvctl's view: a member that answers kvctl's status request
// within about a second. A member kvctl cannot reach may still hear its
// peers; --force skips every check here (the cluster's own safety rules
// never can be).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "messages/messages.hpp"

namespace kvpaxos {

struct MemberHealth {
  bool reachable = false;
  InstanceId applied_below = 0;  // when reachable: it has applied [0, applied_below)
  std::string client_endpoint;   // where it answered (tcp://HOST:PORT), when reachable
  std::string error;             // why it did not answer, when not
};

// By member id. A member with no entry did not answer.
using ClusterHealth = std::map<NodeId, MemberHealth>;

// The furthest applied_below among the reachable members of `config`.
InstanceId furthest_applied(const Config& config, const ClusterHealth& health);
// How far member `id` is behind furthest_applied; empty when it is unreachable.
std::optional<InstanceId> member_lag(const Config& config, const ClusterHealth& health, NodeId id);
bool is_reachable(const ClusterHealth& health, NodeId id);
// Where clients reach m: its client address in the configuration or, when it
// has none there (the members of the first configuration), where it
// answered kvctl; "" when neither is known.
std::string member_client_endpoint(const MemberEntry& m, const ClusterHealth& health);

// The configuration a change would leave (promote, remove, replace; any
// other kind leaves `now` as it is). Names are not checked: the cluster
// refuses a change that breaks its rules, with the reason.
Config config_after(const Config& now, const MemberChange& change);

// Strict reconfiguration: the voters of `after` that kvctl reaches must be a
// majority of them. Empty when they are (or when `after` has no voter: the
// cluster refuses that itself); otherwise why not, naming each voter that
// does not answer and what to do.
std::string live_majority_problem(const Config& after, const ClusterHealth& health);

// Whether a learner may be promoted: it answers and has applied within
// kMaxPromoteLag instances of the furthest reachable member. Otherwise a
// voter that never started (a typo in an address) or is far behind would
// raise the quorum with a vote that cannot help.
inline constexpr InstanceId kMaxPromoteLag = 1024;
enum class Readiness {
  ready,
  no_address,     // kvctl cannot ask it: no client address known
  not_answering,  // worth waiting for (--wait): it may be starting
  behind,         // worth waiting for: it is catching up
};
struct PromotionCheck {
  Readiness readiness = Readiness::ready;
  InstanceId applied_below = 0;  // the learner's, when it answered
  InstanceId furthest = 0;       // furthest_applied
  std::string endpoint;          // where kvctl asks the learner ("" when nowhere)
  std::string problem;           // empty when ready: what is wrong and what to do
};
PromotionCheck promotion_check(const Config& config, const ClusterHealth& health, NodeId learner);
// "n4 has applied 1200 of 90000 instances" / "n4 does not answer at H:P".
std::string promotion_progress(const MemberEntry& learner, const PromotionCheck& check);

// Who a kvctl status line is about, by the configuration read through the
// log (null: it could not be read): the member id the node's reply names
// and that member's role, "removed" when the configuration no longer has it;
// for an endpoint that did not answer (reply null), the member whose client
// address it is. id "-" and role "unknown" when that cannot be told.
struct StatusIdentity {
  std::string id = "-";
  std::string role = "unknown";
};
StatusIdentity status_identity(const Config* config, const std::string& endpoint,
                               const StatusReply* reply);

}  // namespace kvpaxos

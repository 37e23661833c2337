// TransportSecurity: the CurveZMQ keys of one node, and how its tcp sockets
// use them.
//
// Every tcp link of a keyed node is CURVE: encrypted and authenticated.
// - Peer port: the node's ROUTER is a CURVE server presenting the node's key;
//   the ZAP handler accepts only the cluster's node keys and names each
//   connection by the member id the key belongs to (its User-Id). The node's
//   DEALER to a peer is a CURVE client that pins that peer's key.
// - Whose keys: the members of the node's configurations (the replicated
//   ones, docs/architecture.md "Membership"). A member added later carries
//   its public key in its configuration entry (kvctl member add --peer-key),
//   so no node needs a file for it; a member of the first configuration has
//   none there, and its key is the file <name>.key in --peer-keys. A member
//   that leaves every configuration the node holds (removed, and applied past
//   its removal point) loses its key's access with it.
// - Client port: the front door's ROUTER presents the cluster's client key
//   (the same on every node, so a client pins one key for the cluster); the
//   ZAP handler accepts the keys in --client-keys, or, without it, any key
//   but a node key (encrypted, not authorised). The keys of --admin-keys are
//   accepted too, with a User-Id that marks them admin (is_admin_user): only
//   they may make admin requests (kvctl snapshot save).
// A node key is never accepted on the client port, nor a client key on the
// peer port. Inproc links carry no CURVE (nothing crosses a trust boundary).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "actors/security/zap_handler.hpp"
#include "messages/key_file.hpp"
#include "messages/result.hpp"
#include "messages/types.hpp"

namespace kvpaxos {

struct TransportSecurity {
  CurveKey node_key;  // this node's pair
  // By NodeId: the public keys accepted from that node. The first is the one
  // this node pins when it connects there; more than one while a node's key
  // is being rotated (docs/security.md).
  // Empty for a --cluster name without a key file (allowed once the cluster
  // runs: the configuration carries the keys of members added later).
  std::vector<std::vector<std::string>> peer_keys;
  // Every key file in --peer-keys, by the member name it belongs to (n1.key
  // and n1.next.key are n1's), the primary key first.
  std::map<std::string, std::vector<std::string>> keys_by_name;
  CurveKey client_server_key;             // the pair the client port presents
  std::vector<NamedKey> client_keys;      // allowed clients; ignored with any_client
  std::vector<NamedKey> admin_keys;       // allowed clients that may make admin requests
  bool any_client = true;

  // The keys of `name`'s files in --peer-keys (empty: none). Which of them
  // count depends on the configuration (member_keys, actors/net/peer_link.hpp).
  std::vector<std::string> key_files(const std::string& name) const;
};

// Loads a node's keys (kvpaxosd --peer-keys, --client-key, --client-keys).
// `peer_dir` holds <name>.key for every name in `names` (and optionally
// <name>.<anything>.key: further keys accepted from that node) and
// <self>.key_secret; `client_keys_dir` may be empty (any client key). Without
// `every_name`, only self's pair must be there: the other names' keys may
// come from the configuration (a restart, a member added later). Errors name
// the file and what to fix.
Result<TransportSecurity> load_transport_security(const std::vector<std::string>& names,
                                                  std::size_t self, const std::string& peer_dir,
                                                  const std::string& client_key_file,
                                                  const std::string& client_keys_dir,
                                                  bool every_name = true);

// kvpaxosd --admin-keys: the public keys (*.key) in `dir` become s's admin
// keys. Errors name the file and what to fix (a node key is refused).
Result<bool> load_admin_keys(TransportSecurity& s, const std::string& dir);

// The client port's User-Id of a connection with an admin key.
inline constexpr std::string_view kAdminUserPrefix = "admin:";
inline bool is_admin_user(std::string_view user_id) {
  return user_id.substr(0, kAdminUserPrefix.size()) == kAdminUserPrefix;
}

// ZAP domains of a node's ports (distinct per inproc namespace, so several
// nodes can share a process and its ZAP handler).
std::string peer_zap_domain(const std::string& inproc_namespace);
std::string client_zap_domain(const std::string& inproc_namespace);

// Before the node knows its configurations: the --cluster list's key files,
// by index (a node's startup survey, and the first policy).
MemberKeys member_keys_of_list(const TransportSecurity& s);

// Registers the node's peer-port policy (and, with `client_port`, its
// client-port policy) with the handler: peers get in with the keys of
// `members` only, and none of those keys is accepted on the client port.
// The keys of `removed` members get in too, under their ids, unless a
// member has the same key: the peer link refuses everything they send but
// answers with a Removed notice, the only way a removed node learns it must
// stop (peer_link.hpp). Called again whenever the configurations change.
void register_policies(ZapHandler& zap, const TransportSecurity& s, const MemberKeys& members,
                       const std::string& inproc_namespace, bool client_port,
                       const MemberKeys& removed = {});

// Socket options; call before bind (make_curve_client, in key_file.hpp, before connect).
void make_curve_server(zmq::socket_t& s, const CurveKey& own, const std::string& zap_domain);

// The authenticated node behind a peer frame (its User-Id is the node id),
// or kNoAuthenticatedNode when the frame came without CURVE.
inline constexpr NodeId kNoAuthenticatedNode = ~NodeId{0};
NodeId authenticated_node(const zmq::message_t& frame);

}  // namespace kvpaxos

// TransportSecurity: the CurveZMQ keys of one node, and how its tcp sockets
// use them.
//
// Every tcp link of a keyed node is CURVE: encrypted and authenticated.
// - Peer port: the node's ROUTER is a CURVE server presenting the node's key;
//   the ZAP handler accepts only the cluster's node keys and names each
//   connection by the node id the key belongs to (its User-Id). The node's
//   DEALER to a peer is a CURVE client that pins that peer's key.
// - Client port: the front door's ROUTER presents the cluster's client key
//   (the same on every node, so a client pins one key for the cluster); the
//   ZAP handler accepts the keys in --client-keys, or, without it, any key
//   but a node key (encrypted, not authorised). The keys of --admin-keys are
//   accepted too, with a User-Id that marks them admin (is_admin_user): only
//   they may make admin requests (kvctl snapshot save).
// A node key is never accepted on the client port, nor a client key on the
// peer port. Inproc links carry no CURVE (nothing crosses a trust boundary).
#pragma once

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
  std::vector<std::vector<std::string>> peer_keys;
  CurveKey client_server_key;             // the pair the client port presents
  std::vector<NamedKey> client_keys;      // allowed clients; ignored with any_client
  std::vector<NamedKey> admin_keys;       // allowed clients that may make admin requests
  bool any_client = true;
};

// Loads a node's keys (kvpaxosd --peer-keys, --client-key, --client-keys).
// `peer_dir` holds <name>.key for every name in `names` (and optionally
// <name>.<anything>.key: further keys accepted from that node) and
// <self>.key_secret; `client_keys_dir` may be empty (any client key). Errors
// name the file and what to fix.
Result<TransportSecurity> load_transport_security(const std::vector<std::string>& names,
                                                  std::size_t self, const std::string& peer_dir,
                                                  const std::string& client_key_file,
                                                  const std::string& client_keys_dir);

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

// Registers the node's peer-port policy (and, with `client_port`, its
// client-port policy) with the handler.
void register_policies(ZapHandler& zap, const TransportSecurity& s,
                       const std::string& inproc_namespace, bool client_port);

// Socket options; call before bind (make_curve_client, in key_file.hpp, before connect).
void make_curve_server(zmq::socket_t& s, const CurveKey& own, const std::string& zap_domain);

// The authenticated node behind a peer frame (its User-Id is the node id),
// or kNoAuthenticatedNode when the frame came without CURVE.
inline constexpr NodeId kNoAuthenticatedNode = ~NodeId{0};
NodeId authenticated_node(const zmq::message_t& frame);

}  // namespace kvpaxos

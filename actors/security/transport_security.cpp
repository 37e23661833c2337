#include "actors/security/transport_security.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>

namespace kvpaxos {
namespace {

// The node a key file belongs to: "n1.key" -> n1, and "n1.next.key" -> n1
// too (a further key of n1's); node names may hold dots, so the longest
// name that matches wins. names.size() when none does.
std::size_t node_of_key_name(const std::vector<std::string>& names, const std::string& stem) {
  std::size_t best = names.size();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    const bool match = stem == n || (stem.size() > n.size() && stem.compare(0, n.size(), n) == 0 &&
                                     stem[n.size()] == '.');
    if (match && (best == names.size() || n.size() > names[best].size())) best = i;
  }
  return best;
}

// The public keys in `dir` (--client-keys, --admin-keys): at least one.
Result<std::vector<NamedKey>> read_client_keys(const std::string& flag, const std::string& dir,
                                               const std::string& who) {
  Result<std::vector<NamedKey>> keys = read_public_keys_in(dir);
  if (!keys.ok()) return Error{flag + ": " + keys.error()};
  if (keys->empty()) {
    return Error{flag + ": " + dir + " holds no *.key file; add the public key of every client " +
                 who + " (kvctl keygen NAME makes a pair)"};
  }
  return keys;
}

}  // namespace

Result<TransportSecurity> load_transport_security(const std::vector<std::string>& names,
                                                  std::size_t self, const std::string& peer_dir,
                                                  const std::string& client_key_file,
                                                  const std::string& client_keys_dir,
                                                  bool every_name) {
  namespace fs = std::filesystem;
  TransportSecurity s;
  s.peer_keys.resize(names.size());
  Result<std::vector<NamedKey>> found = read_public_keys_in(peer_dir);
  if (!found.ok()) return Error{"--peer-keys: " + found.error()};
  std::map<std::string, std::string> owner;  // public key -> node name
  std::size_t with_key = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string primary = (fs::path(peer_dir) / (names[i] + ".key")).string();
    if (!every_name && i != self && !fs::exists(primary)) continue;  // from the configuration
    Result<CurveKey> key = read_public_key_file(primary);
    if (!key.ok()) {
      return Error{"--peer-keys: " + key.error() + "; every node of --cluster needs its public key "
                   "there (kvctl keygen " + names[i] + " --dir DIR makes one)"};
    }
    s.peer_keys[i].push_back(key->public_key);
    s.keys_by_name[names[i]].push_back(key->public_key);
    owner[key->public_key] = names[i];
    ++with_key;
  }
  for (const NamedKey& k : found.value()) {
    const std::size_t index = node_of_key_name(names, k.name);
    if (index == names.size() && every_name) {
      return Error{"--peer-keys: " + (fs::path(peer_dir) / (k.name + ".key")).string() +
                   " names no node of --cluster; keep only node keys in that directory"};
    }
    // A member this --cluster does not list (a restart after the cluster
    // changed): its file name is its name.
    const std::string node = index == names.size() ? k.name : names[index];
    if (index != names.size() && k.name == node) continue;  // the primary key, read above
    if (auto o = owner.find(k.key.public_key); o != owner.end() && o->second != node) {
      return Error{"--peer-keys: " + k.name + ".key holds the same key as " + o->second +
                   ".key; each node needs a key of its own"};
    }
    owner[k.key.public_key] = node;
    s.keys_by_name[node].push_back(k.key.public_key);
    if (index != names.size()) s.peer_keys[index].push_back(k.key.public_key);
  }
  if (owner.size() < with_key) {
    return Error{"--peer-keys: two nodes share one public key; each node needs a key of its own"};
  }
  const std::string secret = (fs::path(peer_dir) / (names[self] + ".key_secret")).string();
  Result<CurveKey> own = read_secret_key_file(secret);
  if (!own.ok()) return Error{"--peer-keys: " + own.error()};
  if (own->public_key != s.peer_keys[self].front()) {
    return Error{"--peer-keys: " + secret + " does not match " + names[self] +
                 ".key beside it; the two files must be one pair (from one kvctl keygen)"};
  }
  s.node_key = own.value();

  Result<CurveKey> client = read_secret_key_file(client_key_file);
  if (!client.ok()) return Error{"--client-key: " + client.error()};
  if (owner.count(client->public_key) != 0) {
    return Error{"--client-key " + client_key_file + " is the key of node " +
                 owner[client->public_key] + "; the client port needs a key of its own"};
  }
  s.client_server_key = client.value();
  if (client_keys_dir.empty()) return s;
  Result<std::vector<NamedKey>> clients =
      read_client_keys("--client-keys", client_keys_dir, "allowed in");
  if (!clients.ok()) return Error{clients.error()};
  for (const NamedKey& k : clients.value()) {
    if (owner.count(k.key.public_key) != 0) {
      return Error{"--client-keys: " + k.name + ".key is the key of node " +
                   owner[k.key.public_key] + "; node keys are never accepted on the client port"};
    }
  }
  s.client_keys = std::move(clients.value());
  s.any_client = false;
  return s;
}

Result<bool> load_admin_keys(TransportSecurity& s, const std::string& dir) {
  Result<std::vector<NamedKey>> admins =
      read_client_keys("--admin-keys", dir, "allowed to save snapshots");
  if (!admins.ok()) return Error{admins.error()};
  for (const NamedKey& k : admins.value()) {
    for (const auto& [name, node] : s.keys_by_name) {
      if (std::find(node.begin(), node.end(), k.key.public_key) != node.end()) {
        return Error{"--admin-keys: " + k.name + ".key is a node key; node keys are never "
                     "accepted on the client port"};
      }
    }
  }
  s.admin_keys = std::move(admins.value());
  return true;
}

std::string peer_zap_domain(const std::string& ns) { return "kvpaxos-peer:" + ns; }
std::string client_zap_domain(const std::string& ns) { return "kvpaxos-client:" + ns; }

std::vector<std::string> TransportSecurity::key_files(const std::string& name) const {
  auto files = keys_by_name.find(name);
  return files == keys_by_name.end() ? std::vector<std::string>{} : files->second;
}

MemberKeys member_keys_of_list(const TransportSecurity& s) {
  MemberKeys out;
  for (NodeId node = 0; node < s.peer_keys.size(); ++node) {
    if (!s.peer_keys[node].empty()) out[node] = s.peer_keys[node];
  }
  return out;
}

void register_policies(ZapHandler& zap, const TransportSecurity& s, const MemberKeys& members,
                       const std::string& ns, bool client_port, const MemberKeys& removed) {
  ZapPolicy peers{.what = "peer port of " + ns};
  for (const auto& [node, keys] : members) {
    for (const std::string& key : keys) peers.users[key] = std::to_string(node);
  }
  for (const auto& [node, keys] : removed) {
    for (const std::string& key : keys) peers.users.emplace(key, std::to_string(node));
  }
  zap.set_policy(peer_zap_domain(ns), peers);
  if (!client_port) return;
  ZapPolicy clients{.allow_any = s.any_client, .what = "client port of " + ns};
  for (const NamedKey& k : s.client_keys) clients.users[k.key.public_key] = "client:" + k.name;
  for (const NamedKey& k : s.admin_keys) {
    clients.users[k.key.public_key] = std::string(kAdminUserPrefix) + k.name;
  }
  for (const auto& [key, user] : peers.users) clients.refused.insert(key);
  for (const auto& [name, keys] : s.keys_by_name) clients.refused.insert(keys.begin(), keys.end());
  zap.set_policy(client_zap_domain(ns), clients);
}

void make_curve_server(zmq::socket_t& s, const CurveKey& own, const std::string& zap_domain) {
  s.set(zmq::sockopt::zap_domain, zap_domain);
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

NodeId authenticated_node(const zmq::message_t& frame) {
  const std::string user = user_id_of(frame);
  NodeId node = 0;
  const auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), node);
  if (user.empty() || ec != std::errc() || end != user.data() + user.size()) {
    return kNoAuthenticatedNode;
  }
  return node;
}

}  // namespace kvpaxos

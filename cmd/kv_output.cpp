#include "cmd/kv_output.hpp"

#include <cstdio>

namespace kvpaxos {

std::string json_string(const std::string& bytes) {
  std::string out = "\"";
  for (const unsigned char c : bytes) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

namespace {

std::string json_bool(bool b) { return b ? "true" : "false"; }

std::string kv_json(const KeyValue& kv) {
  return "{\"key\":" + json_string(kv.key) + ",\"value\":" + json_string(kv.value) +
         ",\"create_revision\":" + std::to_string(kv.create_revision) +
         ",\"mod_revision\":" + std::to_string(kv.mod_revision) +
         ",\"version\":" + std::to_string(kv.version) + "}";
}

// "count":N,"more":b,"kvs":[...]
std::string keys_json(const std::vector<KeyValue>& kvs, std::uint64_t count, bool more) {
  std::string out = "\"count\":" + std::to_string(count) + ",\"more\":" + json_bool(more) +
                    ",\"kvs\":[";
  for (std::size_t i = 0; i < kvs.size(); ++i) out += (i == 0 ? "" : ",") + kv_json(kvs[i]);
  return out + "]";
}

const char* op_word(OpKind op) {
  switch (op) {
    case OpKind::get:
    case OpKind::range: return "get";
    case OpKind::put: return "put";
    case OpKind::append: return "append";
    case OpKind::delete_range: return "del";
    case OpKind::txn: return "txn";
    case OpKind::member: return "member";
  }
  return "op";
}

std::string response_json(const OpResponse& r) {
  std::string out = "{\"op\":\"" + std::string(op_word(r.op)) + "\"";
  if (r.op == OpKind::range) out += "," + keys_json(r.kvs, r.count, r.more);
  if (r.op == OpKind::get) out += ",\"value\":" + json_string(r.value);
  if (r.op == OpKind::delete_range) out += ",\"deleted\":" + std::to_string(r.count);
  return out + "}";
}

std::string response_text(const RequestOp& op, const OpResponse& r) {
  switch (r.op) {
    case OpKind::put:
    case OpKind::append: return "OK\n";
    case OpKind::delete_range: return std::to_string(r.count) + "\n";
    case OpKind::range: return range_text(r.kvs, r.count, op.flags);
    case OpKind::get: return r.value + "\n";
    case OpKind::txn:
    case OpKind::member: break;  // neither runs inside a txn
  }
  return {};
}

}  // namespace

std::string range_text(const std::vector<KeyValue>& kvs, std::uint64_t count, std::uint8_t flags) {
  if ((flags & kRangeCountOnly) != 0) return std::to_string(count) + "\n";
  std::string out;
  for (const KeyValue& kv : kvs) {
    out += kv.key + "\n";
    if ((flags & kRangeKeysOnly) == 0) out += kv.value + "\n";
  }
  return out;
}

std::string range_json(const OpResult& r, const std::string* single) {
  std::string out = "{";
  if (single != nullptr) {
    const std::string value = r.kvs.empty() ? std::string() : r.kvs.front().value;
    out += "\"key\":" + json_string(*single) + ",\"value\":" + json_string(value) + ",";
  }
  return out + "\"revision\":" + std::to_string(r.revision) + "," +
         keys_json(r.kvs, r.count, r.more) + "}\n";
}

std::string txn_text(const TxnSpec& txn, const OpResult& r) {
  // A reply with other than one response per op is the node's bug; print
  // what matches.
  const std::vector<RequestOp>& ran = r.succeeded ? txn.success : txn.failure;
  std::string out = r.succeeded ? "SUCCESS\n" : "FAILURE\n";
  for (std::size_t i = 0; i < r.responses.size() && i < ran.size(); ++i) {
    out += "\n" + response_text(ran[i], r.responses[i]);
  }
  return out;
}

std::string txn_json(const OpResult& r) {
  std::string out = "{\"succeeded\":" + json_bool(r.succeeded) +
                    ",\"revision\":" + std::to_string(r.revision) + ",\"responses\":[";
  for (std::size_t i = 0; i < r.responses.size(); ++i) {
    out += (i == 0 ? "" : ",") + response_json(r.responses[i]);
  }
  return out + "]}\n";
}

std::string event_text(const WatchEvent& e) {
  if (e.type == EventType::del) return "DELETE\n" + e.kv.key + "\n";
  return "PUT\n" + e.kv.key + "\n" + e.kv.value + "\n";
}

std::string event_json(const WatchEvent& e) {
  const std::string kv = kv_json(e.kv);  // {"key":...}
  return std::string("{\"type\":") + (e.type == EventType::del ? "\"DELETE\"," : "\"PUT\",") +
         kv.substr(1) + "\n";
}

std::string address_of(const std::string& endpoint) {
  constexpr std::string_view tcp = "tcp://";
  return endpoint.starts_with(tcp) ? endpoint.substr(tcp.size()) : endpoint;
}

namespace {

// "n4 (id 3)", from the configuration after the change or, for a member it
// removed, the one before.
std::string member_name(const MemberResult& r, NodeId id, const Config* before = nullptr) {
  const MemberEntry* m = r.config.find(id);
  if (m == nullptr && before != nullptr) m = before->find(id);
  return m == nullptr ? "id " + std::to_string(id) : m->name + " (id " + std::to_string(id) + ")";
}

}  // namespace

namespace {

std::string applied_text(const ClusterHealth& health, NodeId id) {
  return is_reachable(health, id) ? std::to_string(health.at(id).applied_below) : "-";
}

std::string lag_text(const MemberResult& r, const ClusterHealth& health, NodeId id, const char* unknown) {
  const std::optional<InstanceId> lag = member_lag(r.config, health, id);
  return lag ? std::to_string(*lag) : unknown;
}

}  // namespace

std::string member_list_text(const MemberResult& r, const ClusterHealth& health) {
  std::string out = "epoch " + std::to_string(r.epoch) + " (alpha " + std::to_string(r.alpha) + ")";
  if (r.pending_from != 0) out += ", in force from instance " + std::to_string(r.pending_from);
  out += "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-6s %-16s %-8s %-9s %-10s %-8s %-22s %s\n", "ID", "NAME",
                "ROLE", "REACHABLE", "APPLIED", "LAG", "PEER", "CLIENT");
  out += line;
  for (const MemberEntry& m : r.config.members) {
    const std::string endpoint = member_client_endpoint(m, health);
    const std::string client = endpoint.empty() ? "-" : address_of(endpoint);
    std::snprintf(line, sizeof line, "%-6u %-16s %-8s %-9s %-10s %-8s %-22s %s\n",
                  static_cast<unsigned>(m.id), m.name.c_str(), to_string(m.role),
                  is_reachable(health, m.id) ? "yes" : "no", applied_text(health, m.id).c_str(),
                  lag_text(r, health, m.id, "-").c_str(), address_of(m.peer_endpoint).c_str(),
                  client.c_str());
    out += line;
  }
  return out;
}

std::string member_list_json(const MemberResult& r, const ClusterHealth& health) {
  std::string out = "{\"epoch\":" + std::to_string(r.epoch) + ",\"alpha\":" +
                    std::to_string(r.alpha) + ",\"pending_from\":" +
                    std::to_string(r.pending_from) + ",\"members\":[";
  for (std::size_t i = 0; i < r.config.members.size(); ++i) {
    const MemberEntry& m = r.config.members[i];
    const bool reachable = is_reachable(health, m.id);
    out += std::string(i == 0 ? "" : ",") + "{\"id\":" + std::to_string(m.id) +
           ",\"name\":" + json_string(m.name) + ",\"role\":\"" + to_string(m.role) +
           "\",\"peer_addr\":" + json_string(address_of(m.peer_endpoint)) +
           ",\"client_addr\":" + json_string(address_of(member_client_endpoint(m, health))) +
           ",\"reachable\":" + json_bool(reachable) +
           ",\"applied\":" + (reachable ? applied_text(health, m.id) : "null") +
           ",\"lag\":" + lag_text(r, health, m.id, "null") + "}";
  }
  return out + "]}\n";
}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
  return out;
}

namespace {

constexpr const char* kStatusColumns =
    "%-22s %-8s %-4s %-8s %-10s %-10s %-10s %-10s %-8s %-8s %-10s %-10s %-10s %-10s %-8s\n";

// The last instance of [0, below): below - 1, -1 when none.
std::string last_of(InstanceId below) {
  return std::to_string(static_cast<std::int64_t>(below) - 1);
}

}  // namespace

std::string status_text_header() {
  char line[512];
  std::snprintf(line, sizeof line, kStatusColumns, "ENDPOINT", "NAME", "ID", "ROLE", "REACHABLE",
                "APPLIED", "MIN", "MAX", "KEYS", "SESSIONS", "SNAPSHOT", "SNAP_SIZE", "DISK",
                "REVISION", "WATCHES");
  return line;
}

std::string status_text_line(const std::string& endpoint, const StatusReply* s,
                             const StatusIdentity& who) {
  char line[1024];
  if (s == nullptr) {
    std::snprintf(line, sizeof line, kStatusColumns, endpoint.c_str(), "-", who.id.c_str(),
                  who.role.c_str(), "no", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-");
    return line;
  }
  const auto number = [](std::uint64_t n) { return std::to_string(n); };
  std::snprintf(line, sizeof line, kStatusColumns, endpoint.c_str(), s->name.c_str(),
                who.id.c_str(), who.role.c_str(), "yes", last_of(s->applied_below).c_str(),
                number(s->forget_below).c_str(), last_of(s->decided_below).c_str(),
                number(s->keys).c_str(), number(s->sessions).c_str(),
                number(s->snapshot_below).c_str(), human_bytes(s->snapshot_bytes).c_str(),
                human_bytes(s->data_dir_bytes).c_str(), number(s->revision).c_str(),
                number(s->watches).c_str());
  return line;
}

std::string status_json(const std::string& endpoint, const StatusReply* s,
                        const std::string& error, const StatusIdentity& who) {
  std::string json = "{\"endpoint\":" + json_string(endpoint) +
                     ",\"reachable\":" + json_bool(s != nullptr) +
                     ",\"role\":" + json_string(who.role);
  if (s == nullptr) {
    if (who.id != "-") json += ",\"node\":" + who.id;
    return json + ",\"error\":" + json_string(error) + "}";
  }
  return json + ",\"name\":" + json_string(s->name) + ",\"node\":" + std::to_string(s->node) +
         ",\"applied_below\":" + std::to_string(s->applied_below) +
         ",\"min\":" + std::to_string(s->forget_below) + ",\"max\":" + last_of(s->decided_below) +
         ",\"keys\":" + std::to_string(s->keys) + ",\"sessions\":" + std::to_string(s->sessions) +
         ",\"fault_injection\":" + json_bool(s->fault_injection) +
         ",\"snapshot_below\":" + std::to_string(s->snapshot_below) +
         ",\"snapshot_bytes\":" + std::to_string(s->snapshot_bytes) +
         ",\"data_dir_bytes\":" + std::to_string(s->data_dir_bytes) +
         ",\"revision\":" + std::to_string(s->revision) +
         ",\"watches\":" + std::to_string(s->watches) +
         ",\"watch_history_from\":" + std::to_string(s->watch_history_from) +
         ",\"leader\":" + std::to_string(s->leader) + ",\"epoch\":" + std::to_string(s->epoch) + "}";
}

std::string member_change_text(const std::string& what, const MemberResult& r,
                               const Config* before) {
  return what + " " + member_name(r, r.id, before) + ": epoch " + std::to_string(r.epoch) +
         ", in force from instance " + std::to_string(r.effective_from) + "\n";
}

std::string member_change_json(const MemberResult& r) {
  return "{\"id\":" + std::to_string(r.id) + ",\"epoch\":" + std::to_string(r.epoch) +
         ",\"effective_from\":" + std::to_string(r.effective_from) + "}\n";
}

std::string start_command(const MemberResult& r, NodeId id, bool keyed) {
  const MemberEntry* self = r.config.find(id);
  if (self == nullptr) return {};
  std::string cluster;
  for (const MemberEntry& m : r.config.members) {
    cluster += (cluster.empty() ? "" : ",") + m.name + "=" + address_of(m.peer_endpoint);
  }
  std::string out = "kvpaxosd --name " + self->name + " --cluster " + cluster +
                    " --initial-cluster-state existing --data-dir DIR";
  if (!self->client_endpoint.empty()) out += " --client-addr " + address_of(self->client_endpoint);
  if (!keyed) return out + "\n";
  std::string others;
  for (const MemberEntry& m : r.config.members) {
    if (m.id != id) others += (others.empty() ? "" : ", ") + m.name + ".key";
  }
  // Only an admin key changes a keyed cluster's membership, so the cluster
  // that added this member runs with --admin-keys: this one must too, or
  // no change could go through it.
  return out + " --peer-keys KEYDIR --client-key CLIENT.key_secret --admin-keys ADMINDIR\n" +
         "  (KEYDIR holds " + self->name + ".key_secret, " + self->name + ".key and " + others +
         "; CLIENT.key_secret is the client-port pair; ADMINDIR and --client-keys are as on "
         "the other nodes)\n";
}

}  // namespace kvpaxos

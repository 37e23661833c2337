#include "messages/membership.hpp"

#include <algorithm>

namespace kvpaxos {

const char* to_string(MemberRole r) {
  switch (r) {
    case MemberRole::voter: return "voter";
    case MemberRole::learner: return "learner";
  }
  return "unknown";
}

const char* to_string(MemberChangeKind k) {
  switch (k) {
    case MemberChangeKind::list: return "list";
    case MemberChangeKind::add_learner: return "add";
    case MemberChangeKind::promote: return "promote";
    case MemberChangeKind::remove: return "remove";
    case MemberChangeKind::replace: return "replace";
    case MemberChangeKind::update: return "update";
  }
  return "unknown";
}

const MemberEntry* Config::find(NodeId id) const {
  auto it = std::lower_bound(members.begin(), members.end(), id,
                             [](const MemberEntry& m, NodeId v) { return m.id < v; });
  return it != members.end() && it->id == id ? &*it : nullptr;
}

const MemberEntry* Config::find_name(const std::string& name) const {
  for (const MemberEntry& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

bool Config::is_voter(NodeId id) const {
  const MemberEntry* m = find(id);
  return m != nullptr && m->role == MemberRole::voter;
}

std::vector<NodeId> Config::voters() const {
  std::vector<NodeId> ids;
  for (const MemberEntry& m : members) {
    if (m.role == MemberRole::voter) ids.push_back(m.id);
  }
  return ids;
}

std::vector<NodeId> Config::member_ids() const {
  std::vector<NodeId> ids;
  ids.reserve(members.size());
  for (const MemberEntry& m : members) ids.push_back(m.id);
  return ids;
}

std::size_t Config::voter_count() const {
  return static_cast<std::size_t>(std::count_if(
      members.begin(), members.end(), [](const MemberEntry& m) { return m.role == MemberRole::voter; }));
}

const Config& ConfigHistory::at(InstanceId instance) const {
  auto it = std::upper_bound(entries.begin(), entries.end(), instance,
                             [](InstanceId v, const ConfigAt& e) { return v < e.from; });
  return it == entries.begin() ? entries.front().config : std::prev(it)->config;
}

namespace {
std::vector<NodeId> union_of(const std::vector<ConfigAt>& entries, bool voters_only) {
  std::vector<NodeId> ids;
  for (const ConfigAt& e : entries) {
    for (const MemberEntry& m : e.config.members) {
      if (!voters_only || m.role == MemberRole::voter) ids.push_back(m.id);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}
}  // namespace

std::vector<NodeId> ConfigHistory::all_voters() const { return union_of(entries, true); }
std::vector<NodeId> ConfigHistory::all_members() const { return union_of(entries, false); }

bool ConfigHistory::is_member(NodeId id) const {
  return std::any_of(entries.begin(), entries.end(),
                     [id](const ConfigAt& e) { return e.config.is_member(id); });
}

ConfigHistory ConfigHistory::fixed(std::size_t n) {
  Config c;
  for (std::size_t i = 0; i < n; ++i) {
    c.members.push_back(MemberEntry{.id = static_cast<NodeId>(i), .name = "n" + std::to_string(i + 1)});
  }
  return ConfigHistory{{ConfigAt{0, std::move(c)}}, ~InstanceId{0}};
}

}  // namespace kvpaxos

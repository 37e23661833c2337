#include "actors/kv/snapshot_record.hpp"

#include <algorithm>
#include <exception>
#include <unordered_set>

#include "messages/msgpack_scan.hpp"

namespace kvpaxos {

namespace {

// encode_snapshot writes each key and each client once. A client listed twice
// would leave a kept reply counted twice, and the reply budget would then
// loop forever over a reply already dropped (found by the snapshot fuzzer).
Result<SnapshotRecord> no_duplicates(SnapshotRecord& r) {
  std::unordered_set<std::string_view> keys;
  keys.reserve(r.kv.size());
  for (const auto& [k, v] : r.kv) {
    if (!keys.insert(k).second) return Error{"snapshot lists a key twice, which kvpaxosd never writes"};
  }
  std::unordered_set<ClientId> clients;
  clients.reserve(r.sessions.size());
  for (const SessionRecord& s : r.sessions) {
    if (!clients.insert(s.client).second) {
      return Error{"snapshot lists client " + std::to_string(s.client) +
                   " twice, which kvpaxosd never writes"};
    }
  }
  return std::move(r);
}

}  // namespace

std::string encode_snapshot(const SnapshotRecord& r) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, r);
  return std::string(buf.data(), buf.size());
}

Result<SnapshotRecord> parse_snapshot(std::string_view bytes) {
  // A snapshot may hold as many values as bytes; the scan checks that the
  // lengths it declares are really there before msgpack-c allocates for them.
  Result<MsgpackShape> shape = scan_msgpack(bytes, {.max_values = bytes.size(), .max_depth = 8});
  if (!shape.ok()) return Error{"snapshot does not decode: " + shape.error()};
  SnapshotRecord r;
  try {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    h.get().convert(r);
  } catch (const std::exception& e) {
    return Error{std::string("snapshot does not decode: ") + e.what()};
  }
  if (r.format == 1) {  // written from a hash map: no order
    std::sort(r.kv.begin(), r.kv.end());
    r.revision = 0;
    r.key_revisions.assign(r.kv.size(), KeyRevisions{});
    for (SessionRecord& s : r.sessions) {
      s.reply = OpResult{.value = std::move(s.reply_value)};
      s.reply_value.clear();
    }
  } else if (r.format != 2 && r.format != kSnapshotFormat) {
    return Error{"snapshot format " + std::to_string(r.format) + " is not one this kvpaxosd "
                 "reads (1 to " + std::to_string(kSnapshotFormat) + ")"};
  }
  if (r.has_config()) {
    if (Result<ConfigState> c = ConfigState::from_record(r.config); !c.ok()) {
      return Error{"snapshot: " + c.error()};
    }
  }
  if (r.key_revisions.size() != r.kv.size()) {
    return Error{"snapshot has revisions for " + std::to_string(r.key_revisions.size()) +
                 " keys but holds " + std::to_string(r.kv.size())};
  }
  for (std::size_t i = 0; i < r.kv.size(); ++i) {
    const KeyRevisions& k = r.key_revisions[i];
    if (k.version == 0 || k.create_revision > k.mod_revision || k.mod_revision > r.revision) {
      return Error{"snapshot holds a key with revisions kvpaxosd never writes"};
    }
    if (i > 0 && !(r.kv[i - 1].first < r.kv[i].first)) {
      return Error{"snapshot keys are not in byte order, which kvpaxosd always writes"};
    }
  }
  return no_duplicates(r);
}

}  // namespace kvpaxos

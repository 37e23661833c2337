#include "actors/kv/snapshot_record.hpp"

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
  Result<MsgpackShape> shape = scan_msgpack(bytes, {.max_values = bytes.size(), .max_depth = 4});
  if (!shape.ok()) return Error{"snapshot does not decode: " + shape.error()};
  SnapshotRecord r;
  try {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    h.get().convert(r);
  } catch (const std::exception& e) {
    return Error{std::string("snapshot does not decode: ") + e.what()};
  }
  if (r.format != kSnapshotFormat) {
    return Error{"snapshot format " + std::to_string(r.format) + " is not the " +
                 std::to_string(kSnapshotFormat) + " this kvpaxosd reads"};
  }
  return no_duplicates(r);
}

}  // namespace kvpaxos

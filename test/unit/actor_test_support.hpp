// Helpers shared by the unit tests that drive actor logic directly: fake
// time, the messages an actor sent, and a temporary directory.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "actors/core/actor.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos::test_support {

inline Time at(int ms) { return Time{} + std::chrono::milliseconds(ms); }

// Every message of type T in `out`, with where it goes.
template <typename T>
std::vector<std::pair<Address, T>> sent(const Outbox& out) {
  std::vector<std::pair<Address, T>> found;
  for (const Outbound& m : out) {
    if (const T* t = std::get_if<T>(&m.body)) found.emplace_back(m.to, *t);
  }
  return found;
}

// A fresh directory under /tmp, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kvpaxos-unit-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A log entry: `requests` as one batch by `author`.
inline std::string batch_of(NodeId author, const std::vector<ClientRequest>& requests) {
  std::vector<std::string> ops;
  for (const ClientRequest& r : requests) ops.push_back(encode_op(KvOp::from(r)));
  return encode_batch(author, ops);
}

// The ClientReplies in what went to the front door.
inline std::vector<ClientReply> client_replies(const Outbox& out) {
  std::vector<ClientReply> found;
  for (const auto& [to, m] : sent<ToClient>(out)) {
    Result<Body> b = decode(m.body);
    if (b.ok() && std::holds_alternative<ClientReply>(b.value())) {
      found.push_back(std::get<ClientReply>(b.value()));
    }
  }
  return found;
}

}  // namespace kvpaxos::test_support

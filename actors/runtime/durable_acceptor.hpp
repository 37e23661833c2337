// An acceptor recovered from its log under a directory, with that log: what
// kvpaxosd's acceptor thread runs, for the tools that change a data dir
// offline (kvpaxosd --join's vote floor) and for tests.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "actors/paxos/acceptor.hpp"
#include "actors/storage/segmented_log.hpp"

namespace kvpaxos {

struct DurableAcceptor {
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<SegmentedLog> log;
  // Persists what the acceptor did since the last call, as its runner does.
  Result<bool> sync() { return persist(*log, acceptor->take_writes(), /*to_disk=*/true); }
  Acceptor* operator->() { return acceptor.get(); }
};

Result<DurableAcceptor> open_durable_acceptor(const std::string& dir, LogOpenReport* report,
                                              std::optional<NodeId> self = std::nullopt,
                                              std::size_t cluster_size = kMaxClusterSize);

}  // namespace kvpaxos

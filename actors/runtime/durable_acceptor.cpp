#include "actors/runtime/durable_acceptor.hpp"

#include <vector>

namespace kvpaxos {

Result<DurableAcceptor> open_durable_acceptor(const std::string& dir, LogOpenReport* report,
                                              std::optional<NodeId> self,
                                              std::size_t cluster_size) {
  std::vector<std::string> records;
  Result<std::unique_ptr<SegmentedLog>> log = SegmentedLog::open(
      dir, "acceptor", [&records](std::string_view r) { records.emplace_back(r); }, report);
  if (!log.ok()) return Error{log.error()};
  Result<std::unique_ptr<Acceptor>> acceptor = Acceptor::recover(records, dir, self, cluster_size);
  if (!acceptor.ok()) return Error{acceptor.error()};
  return DurableAcceptor{std::move(acceptor.value()), std::move(log.value())};
}

}  // namespace kvpaxos

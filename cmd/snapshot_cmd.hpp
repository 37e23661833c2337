// kvctl snapshot save and kvctl snapshot status: a backup of one node's
// state in a file (actors/storage/backup_file.hpp), and what such a file
// holds. kvpaxosd restore seeds a new cluster from it.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "client/client.hpp"
#include "messages/result.hpp"

namespace kvpaxos::snapshot_cmd {

// Fetches a snapshot from the node at `endpoint` and writes it to `path`
// (atomically: PATH.part, fsynced, renamed; an existing PATH is refused).
// First a read through the log at that node, answered only once the node
// has applied it: the snapshot made after it holds every write acknowledged
// before the save began. `client` must talk to `endpoint` alone. Progress
// lines go to `progress` about once a second; the summary is returned.
Result<std::string> save(Client& client, const std::string& endpoint, const std::string& path,
                         std::chrono::milliseconds timeout, std::ostream& progress);

// The file's metadata and whether its checksums hold, as text or one JSON
// object; an Error (the file cannot be used) when it is damaged.
Result<std::string> status(const std::string& path, bool json);

}  // namespace kvpaxos::snapshot_cmd

#include "actors/storage/segmented_log.hpp"

#include "actors/storage/record_format.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace kvpaxos {
namespace {

namespace fs = std::filesystem;

std::string errno_text() { return std::strerror(errno); }

Result<std::string> read_whole(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open " + path + ": " + errno_text()};
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) data.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_text();
      ::close(fd);
      return Error{"cannot read " + path + ": " + why};
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

Result<bool> write_fd(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{"cannot write " + path + ": " + errno_text()};
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::uint64_t directory_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

Result<bool> sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open directory " + dir + ": " + errno_text()};
  const int rc = ::fsync(fd);
  const std::string why = rc == 0 ? "" : errno_text();
  ::close(fd);
  if (rc != 0) return Error{"cannot fsync directory " + dir + ": " + why};
  return true;
}

SegmentedLog::SegmentedLog(std::string dir, std::string prefix, std::uint64_t segment_bytes)
    : dir_(std::move(dir)), prefix_(std::move(prefix)), segment_bytes_(segment_bytes) {}

SegmentedLog::~SegmentedLog() {
  if (fd_ >= 0) ::close(fd_);
}

std::string SegmentedLog::segment_path(std::uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof name, "-%08llu.log", static_cast<unsigned long long>(number));
  return dir_ + "/" + prefix_ + name;
}

Result<std::unique_ptr<SegmentedLog>> SegmentedLog::open(
    const std::string& dir, const std::string& prefix,
    const std::function<void(std::string_view)>& each, LogOpenReport* report,
    std::uint64_t segment_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{"cannot create " + dir + ": " + ec.message()};
  std::unique_ptr<SegmentedLog> log(new SegmentedLog(dir, prefix, segment_bytes));
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != prefix.size() + 13 || name.rfind(prefix + "-", 0) != 0 ||
        name.substr(name.size() - 4) != ".log") {
      continue;
    }
    log->segments_.push_back(std::stoull(name.substr(prefix.size() + 1, 8)));
  }
  if (ec) return Error{"cannot list " + dir + ": " + ec.message()};
  std::sort(log->segments_.begin(), log->segments_.end());

  LogOpenReport local;
  LogOpenReport& r = report ? *report : local;
  for (std::size_t i = 0; i < log->segments_.size(); ++i) {
    const std::string path = log->segment_path(log->segments_[i]);
    Result<std::string> data = read_whole(path);
    if (!data.ok()) return Error{data.error()};
    const RecordScan s = scan_records(*data, each);
    r.records += s.records;
    const bool newest = i + 1 == log->segments_.size();
    if (s.damaged && !(newest && s.reaches_end)) {
      return Error{"corrupt record in " + path + " at byte offset " + std::to_string(s.good_bytes) +
                   " (checksum or length does not match, and it is not a torn write at the "
                   "end of the log); refusing to start on a damaged acceptor log. Restore this "
                   "data dir from a backup, or wipe it and rebuild the node with kvpaxosd --join"};
    }
    if (s.damaged) {
      r.torn_bytes = data->size() - s.good_bytes;
      r.torn_file = path;
      if (::truncate(path.c_str(), static_cast<off_t>(s.good_bytes)) != 0) {
        return Error{"cannot cut the torn tail of " + path + ": " + errno_text()};
      }
    }
    log->bytes_on_disk_ += s.good_bytes;
  }
  if (log->segments_.empty()) {
    Result<bool> started = log->start_segment(1);
    if (!started.ok()) return Error{started.error()};
  } else {
    const std::string path = log->segment_path(log->segments_.back());
    log->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log->fd_ < 0) return Error{"cannot open " + path + ": " + errno_text()};
    struct stat st {};
    ::fstat(log->fd_, &st);
    log->segment_size_ = static_cast<std::uint64_t>(st.st_size);
    if (r.torn_bytes > 0 && ::fdatasync(log->fd_) != 0) {
      return Error{"cannot fsync " + path + ": " + errno_text()};
    }
  }
  log->bytes_since_rewrite_ = log->bytes_on_disk_;
  return log;
}

Result<bool> SegmentedLog::start_segment(std::uint64_t number) {
  const std::string path = segment_path(number);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"cannot create " + path + ": " + errno_text()};
  Result<bool> dir = sync_directory(dir_);
  if (!dir.ok()) {
    ::close(fd);
    return dir;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  segment_size_ = 0;
  segments_.push_back(number);
  return true;
}

void SegmentedLog::append(std::string_view payload) { buffer_ += frame_record(payload); }

Result<bool> SegmentedLog::write_all(std::string_view bytes) {
  Result<bool> w = write_fd(fd_, bytes, segment_path(segments_.back()));
  if (!w.ok()) return w;
  segment_size_ += bytes.size();
  bytes_on_disk_ += bytes.size();
  bytes_since_rewrite_ += bytes.size();
  return true;
}

Result<bool> SegmentedLog::sync(bool to_disk) {
  if (buffer_.empty()) return true;
  if (segment_size_ >= segment_bytes_) {
    Result<bool> started = start_segment(segments_.back() + 1);
    if (!started.ok()) return started;
  }
  Result<bool> w = write_all(buffer_);
  buffer_.clear();
  if (!w.ok()) return w;
  if (to_disk && ::fdatasync(fd_) != 0) {
    return Error{"cannot fsync " + segment_path(segments_.back()) + ": " + errno_text()};
  }
  return true;
}

Result<bool> SegmentedLog::rewrite(const std::vector<std::string>& records) {
  // Whatever was buffered is superseded by the live state being written.
  buffer_.clear();
  const std::vector<std::uint64_t> old = segments_;
  Result<bool> started = start_segment(segments_.back() + 1);
  if (!started.ok()) return started;
  bytes_on_disk_ = 0;
  bytes_since_rewrite_ = 0;
  std::string bytes;
  for (const std::string& r : records) bytes += frame_record(r);
  Result<bool> w = write_all(bytes);
  if (!w.ok()) return w;
  if (::fdatasync(fd_) != 0) {
    return Error{"cannot fsync " + segment_path(segments_.back()) + ": " + errno_text()};
  }
  // Only now may the old segments go: the new one holds everything.
  for (std::uint64_t n : old) ::unlink(segment_path(n).c_str());
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(old.size()));
  return sync_directory(dir_);
}

Result<bool> write_file_atomically(const std::string& dir, const std::string& name,
                                   std::string_view bytes) {
  if (bytes.size() > kMaxFileRecordBytes) {
    return Error{"cannot write " + dir + "/" + name + ": " + std::to_string(bytes.size()) +
                 " bytes exceed the 4 GiB a snapshot file holds"};
  }
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"cannot create " + tmp + ": " + errno_text()};
  // Header and payload written apart: a snapshot is as large as the state,
  // and framing it in one string would hold a second copy in memory.
  Result<bool> w = write_fd(fd, record_header(bytes), tmp);
  if (w.ok()) w = write_fd(fd, bytes, tmp);
  if (w.ok() && ::fsync(fd) != 0) w = Error{"cannot fsync " + tmp + ": " + errno_text()};
  ::close(fd);
  if (!w.ok()) return w;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error{"cannot rename " + tmp + " to " + path + ": " + errno_text()};
  }
  return sync_directory(dir);
}

Result<FileRead> read_checked_file(const std::string& path) {
  if (!fs::exists(path)) return FileRead{};
  Result<std::string> data = read_whole(path);
  if (!data.ok()) return Error{data.error()};
  Result<std::string> payload = checked_file_payload(std::move(data.value()), path);
  if (!payload.ok()) return Error{payload.error()};
  return FileRead{true, std::move(payload.value())};
}

}  // namespace kvpaxos

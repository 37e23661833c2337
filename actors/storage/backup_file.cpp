#include "actors/storage/backup_file.hpp"

#include <cassert>
#include <exception>
#include <fstream>
#include <iterator>

#include "actors/storage/record_format.hpp"
#include "messages/msgpack_scan.hpp"

namespace kvpaxos {
namespace {

constexpr std::size_t kPrefixBytes = kBackupMagic.size() + 4 + 4;  // magic, version, meta_len
constexpr std::size_t kChecksumBytes = 4;

std::uint32_t load_u32(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

void store_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

const char* kUnusable = "; the file cannot be used: save a snapshot again";

Result<BackupMeta> decode_meta(std::string_view bytes) {
  Result<MsgpackShape> shape = scan_msgpack(bytes, {.max_values = 64, .max_depth = 2});
  if (!shape.ok()) return Error{"its metadata does not decode: " + shape.error() + kUnusable};
  BackupMeta meta;
  try {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    h.get().convert(meta);
  } catch (const std::exception& e) {
    return Error{std::string("its metadata does not decode: ") + e.what() + kUnusable};
  }
  return meta;
}

}  // namespace

std::string encode_backup_file(BackupMeta meta, std::string_view payload) {
  meta.payload_bytes = payload.size();
  meta.payload_crc = crc32c(payload);
  msgpack::sbuffer packed;
  msgpack::pack(packed, meta);
  assert(packed.size() <= kMaxBackupMetaBytes);
  std::string out(kBackupMagic);
  out.reserve(kPrefixBytes + packed.size() + payload.size() + kChecksumBytes);
  store_u32(out, kBackupFileVersion);
  store_u32(out, static_cast<std::uint32_t>(packed.size()));
  out.append(packed.data(), packed.size());
  out.append(payload);
  store_u32(out, crc32c(out));
  assert(out.size() == kPrefixBytes + packed.size() + payload.size() + kChecksumBytes);
  return out;
}

Result<BackupFile> parse_backup_file(std::string_view bytes) {
  if (bytes.size() < kBackupMagic.size() || bytes.substr(0, kBackupMagic.size()) != kBackupMagic) {
    return Error{"not a kvpaxos snapshot file (it does not start with the magic bytes "
                 "\"KVPXBAK\"); give a file kvctl snapshot save wrote"};
  }
  if (bytes.size() < kPrefixBytes + kChecksumBytes) {
    return Error{"truncated: " + std::to_string(bytes.size()) + " bytes, shorter than any "
                 "snapshot file" + kUnusable};
  }
  const std::uint32_t version = load_u32(bytes, kBackupMagic.size());
  if (version != kBackupFileVersion) {
    return Error{"snapshot file version " + std::to_string(version) + " is not one this release "
                 "reads (" + std::to_string(kBackupFileVersion) + "); use the release that saved it"};
  }
  const std::uint32_t meta_len = load_u32(bytes, kBackupMagic.size() + 4);
  if (meta_len > kMaxBackupMetaBytes || kPrefixBytes + meta_len + kChecksumBytes > bytes.size()) {
    return Error{"truncated or damaged: its metadata length (" + std::to_string(meta_len) +
                 " bytes) does not fit in the file's " + std::to_string(bytes.size()) + kUnusable};
  }
  Result<BackupMeta> meta = decode_meta(bytes.substr(kPrefixBytes, meta_len));
  if (!meta.ok()) return Error{meta.error()};
  const std::uint64_t expected = kPrefixBytes + meta_len + meta->payload_bytes + kChecksumBytes;
  if (meta->payload_bytes > bytes.size() || expected != bytes.size()) {
    return Error{std::string(expected > bytes.size() ? "truncated" : "damaged") + ": its "
                 "metadata says " + std::to_string(expected) + " bytes, the file has " +
                 std::to_string(bytes.size()) + kUnusable};
  }
  const std::size_t body = bytes.size() - kChecksumBytes;
  if (crc32c(bytes.substr(0, body)) != load_u32(bytes, body)) {
    return Error{"damaged: its checksum (crc32c) does not match its content" + std::string(kUnusable)};
  }
  std::string_view payload = bytes.substr(kPrefixBytes + meta_len, meta->payload_bytes);
  if (crc32c(payload) != meta->payload_crc) {
    return Error{"damaged: the snapshot's crc32c differs from the one the node sent" +
                 std::string(kUnusable)};
  }
  return BackupFile{std::move(meta.value()), std::string(payload)};
}

Result<BackupFile> read_backup_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path + ": no such file, or not readable"};
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return Error{"cannot read " + path + ": an I/O error"};
  Result<BackupFile> parsed = parse_backup_file(bytes);
  if (!parsed.ok()) return Error{path + ": " + parsed.error()};
  return parsed;
}

}  // namespace kvpaxos

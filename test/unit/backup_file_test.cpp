// The backup file of kvctl snapshot save (actors/storage/backup_file.hpp):
// what it holds comes back whole, and any damage is refused with an error
// that says so.
#include <gtest/gtest.h>

#include "actors/storage/backup_file.hpp"
#include "actors/storage/record_format.hpp"

namespace kvpaxos {
namespace {

BackupMeta sample_meta() {
  return BackupMeta{.applied_below = 4711, .revision = 99, .keys = 3, .source = "n2",
                    .saved_unix_ms = 1'800'000'000'000};
}

std::string sample_payload() {
  std::string p;
  for (int i = 0; i < 5000; ++i) p.push_back(static_cast<char>(i * 31));
  return p;
}

TEST(BackupFile, RoundTripKeepsMetadataAndPayload) {
  const std::string file = encode_backup_file(sample_meta(), sample_payload());
  Result<BackupFile> back = parse_backup_file(file);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->payload, sample_payload());
  EXPECT_EQ(back->meta.applied_below, 4711u);
  EXPECT_EQ(back->meta.revision, 99u);
  EXPECT_EQ(back->meta.keys, 3u);
  EXPECT_EQ(back->meta.source, "n2");
  EXPECT_EQ(back->meta.saved_unix_ms, 1'800'000'000'000u);
  EXPECT_EQ(back->meta.payload_bytes, sample_payload().size());
  EXPECT_EQ(back->meta.payload_crc, crc32c(sample_payload()));
}

TEST(BackupFile, EmptyPayloadRoundTrips) {
  Result<BackupFile> back = parse_backup_file(encode_backup_file(sample_meta(), ""));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_TRUE(back->payload.empty());
}

// Every single flipped byte, wherever it is, makes the file unusable.
TEST(BackupFile, AnyCorruptByteIsRefused) {
  const std::string file = encode_backup_file(sample_meta(), sample_payload());
  for (std::size_t at = 0; at < file.size(); at += 7) {
    std::string bad = file;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    Result<BackupFile> parsed = parse_backup_file(bad);
    EXPECT_FALSE(parsed.ok()) << "byte " << at << " flipped and the file still parsed";
  }
  std::string bad = file;
  bad[file.size() / 2] = static_cast<char>(bad[file.size() / 2] ^ 1);
  Result<BackupFile> parsed = parse_backup_file(bad);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("checksum"), std::string::npos) << parsed.error();
}

TEST(BackupFile, TruncatedFileIsRefusedAsTruncated) {
  const std::string file = encode_backup_file(sample_meta(), sample_payload());
  for (std::size_t keep : {std::size_t{0}, std::size_t{9}, std::size_t{20}, file.size() / 2,
                           file.size() - 1}) {
    Result<BackupFile> parsed = parse_backup_file(std::string_view(file).substr(0, keep));
    EXPECT_FALSE(parsed.ok()) << "kept " << keep << " of " << file.size() << " bytes";
  }
  Result<BackupFile> half = parse_backup_file(std::string_view(file).substr(0, file.size() / 2));
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().find("truncated"), std::string::npos) << half.error();
}

TEST(BackupFile, TrailingBytesAreRefused) {
  const std::string file = encode_backup_file(sample_meta(), sample_payload()) + "x";
  Result<BackupFile> parsed = parse_backup_file(file);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("damaged"), std::string::npos) << parsed.error();
}

TEST(BackupFile, WrongMagicIsNotASnapshotFile) {
  std::string file = encode_backup_file(sample_meta(), sample_payload());
  file[0] = 'X';
  Result<BackupFile> parsed = parse_backup_file(file);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("not a kvpaxos snapshot file"), std::string::npos) << parsed.error();
  EXPECT_FALSE(parse_backup_file("hello").ok());
}

TEST(BackupFile, OtherVersionIsRefusedByNumber) {
  std::string file = encode_backup_file(sample_meta(), sample_payload());
  file[kBackupMagic.size()] = 2;  // version 2, little-endian
  // Fix the checksum too: the version alone must be the reason.
  file.resize(file.size() - 4);
  const std::uint32_t crc = crc32c(file);
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  Result<BackupFile> parsed = parse_backup_file(file);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("version 2"), std::string::npos) << parsed.error();
}

TEST(BackupFile, MissingFileNamesThePath) {
  Result<BackupFile> read = read_backup_file("/nonexistent/dir/snap.db");
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().find("/nonexistent/dir/snap.db"), std::string::npos) << read.error();
}

}  // namespace
}  // namespace kvpaxos

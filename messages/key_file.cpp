#include "messages/key_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <zmq.h>

namespace kvpaxos {
namespace {

constexpr std::size_t kZ85KeyChars = 40;
constexpr std::size_t kKeyBytes = 32;
// A key file is a few hundred bytes; anything much larger is not one.
constexpr std::uintmax_t kMaxKeyFileBytes = 64 * 1024;

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

// `name = "value"` (ZPL); the value may be quoted with " or ' or bare.
bool property(std::string_view line, std::string_view name, std::string& value) {
  line = trim(line);
  if (line.substr(0, name.size()) != name) return false;
  std::string_view rest = trim(line.substr(name.size()));
  if (rest.empty() || rest.front() != '=') return false;
  rest = trim(rest.substr(1));
  if (rest.size() >= 2 && (rest.front() == '"' || rest.front() == '\'') &&
      rest.back() == rest.front()) {
    rest = rest.substr(1, rest.size() - 2);
  }
  value.assign(rest);
  return true;
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &utc);
  return text;
}

Result<std::string> read_small_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error{"cannot read key file " + path + ": " + ec.message()};
  if (size > kMaxKeyFileBytes) {
    return Error{path + " is " + std::to_string(size) + " bytes, too large for a key file"};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read key file " + path + ": " + std::strerror(errno)};
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Result<bool> write_file(const std::string& path, const std::string& text, mode_t mode) {
  FILE* out = std::fopen(path.c_str(), "wx");  // never overwrite
  if (out == nullptr) return Error{"cannot create " + path + ": " + std::strerror(errno)};
  const bool written = ::fchmod(fileno(out), mode) == 0 &&
                       std::fwrite(text.data(), 1, text.size(), out) == text.size() &&
                       std::fflush(out) == 0;
  std::fclose(out);
  if (!written) return Error{"cannot write " + path + ": " + std::strerror(errno)};
  return true;
}

}  // namespace

CurveKey generate_curve_key() {
  std::array<char, kZ85KeyChars + 1> pub{};
  std::array<char, kZ85KeyChars + 1> sec{};
  // Fails only when libzmq was built without CURVE, which the build checks.
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) return {};
  return {pub.data(), sec.data()};
}

bool valid_z85_key(std::string_view z85) {
  if (z85.size() != kZ85KeyChars) return false;
  const std::string text(z85);
  std::array<std::uint8_t, kKeyBytes> raw{};
  return zmq_z85_decode(raw.data(), text.c_str()) != nullptr;
}

std::string format_key_file(const CurveKey& key, bool secret) {
  std::string text = "#   ****  Generated on " + today() + " by kvpaxos  ****\n";
  if (secret) {
    text +=
        "#   ZeroMQ CURVE **Secret** Certificate\n"
        "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n";
  } else {
    text +=
        "#   ZeroMQ CURVE Public Certificate\n"
        "#   Exchange securely, or use a secure mechanism to verify the contents\n"
        "#   of this file after exchange.\n\n";
  }
  text += "metadata\ncurve\n    public-key = \"" + key.public_key + "\"\n";
  if (secret) text += "    secret-key = \"" + key.secret_key + "\"\n";
  return text;
}

Result<CurveKey> parse_key_file(std::string_view text, bool need_secret,
                                const std::string& origin) {
  CurveKey key;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    // A comment line starts with '#'; a key may hold '#' (it is a Z85 character).
    if (trim(line).substr(0, 1) == "#") continue;
    std::string value;
    if (property(line, "public-key", value)) key.public_key = value;
    if (property(line, "secret-key", value)) key.secret_key = value;
  }
  if (key.public_key.empty()) {
    return Error{origin + " holds no public-key; is it a CURVE key file (kvctl keygen NAME)?"};
  }
  if (!valid_z85_key(key.public_key)) {
    return Error{origin + ": public-key is not a 40-character Z85 CURVE key"};
  }
  if (!need_secret) {
    key.secret_key.clear();
    return key;
  }
  if (key.secret_key.empty()) {
    return Error{origin + " holds no secret-key; give the NAME.key_secret file, not NAME.key"};
  }
  if (!valid_z85_key(key.secret_key)) {
    return Error{origin + ": secret-key is not a 40-character Z85 CURVE key"};
  }
  std::array<char, kZ85KeyChars + 1> derived{};
  if (zmq_curve_public(derived.data(), key.secret_key.c_str()) != 0 ||
      key.public_key != derived.data()) {
    return Error{origin + ": public-key does not belong to its secret-key (a damaged or edited "
                 "file); generate a new pair with kvctl keygen"};
  }
  return key;
}

Result<CurveKey> read_public_key_file(const std::string& path) {
  Result<std::string> text = read_small_file(path);
  if (!text.ok()) return Error{text.error()};
  return parse_key_file(*text, /*need_secret=*/false, path);
}

Result<CurveKey> read_secret_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error{"cannot read secret key file " + path + ": " + std::strerror(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Error{path + " is not a regular file"};
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error{"secret key file " + path + " may be read by group or others (mode " + mode +
                 "); run chmod 600 " + path};
  }
  Result<std::string> text = read_small_file(path);
  if (!text.ok()) return Error{text.error()};
  return parse_key_file(*text, /*need_secret=*/true, path);
}

Result<bool> write_key_files(const std::string& dir, const std::string& name, const CurveKey& key) {
  namespace fs = std::filesystem;
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return Error{"key name '" + name + "' must be a plain file name (e.g. n1, client-alice)"};
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return Error{"cannot create " + dir + ": " + ec.message()};
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  const std::string base = (fs::path(dir) / name).string();
  if (fs::exists(base + ".key_secret", ec) || fs::exists(base + ".key", ec)) {
    return Error{base + ".key or " + base + ".key_secret exists already; remove it first or "
                 "choose another name (keys are never overwritten)"};
  }
  Result<bool> secret = write_file(base + ".key_secret", format_key_file(key, true), 0600);
  if (!secret.ok()) return secret;
  return write_file(base + ".key", format_key_file(key, false), 0644);
}

Result<std::vector<NamedKey>> read_public_keys_in(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<NamedKey> keys;
  fs::directory_iterator it(dir, ec);
  if (ec) return Error{"cannot read key directory " + dir + ": " + ec.message()};
  for (const fs::directory_entry& e : it) {
    if (e.path().extension() != ".key") continue;
    Result<CurveKey> key = read_public_key_file(e.path().string());
    if (!key.ok()) return Error{key.error()};
    keys.push_back({e.path().stem().string(), std::move(key.value())});
  }
  std::sort(keys.begin(), keys.end(),
            [](const NamedKey& a, const NamedKey& b) { return a.name < b.name; });
  return keys;
}

void make_curve_client(zmq::socket_t& s, const CurveKey& own, const std::string& server_public) {
  s.set(zmq::sockopt::curve_serverkey, server_public);
  s.set(zmq::sockopt::curve_publickey, own.public_key);
  s.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

}  // namespace kvpaxos

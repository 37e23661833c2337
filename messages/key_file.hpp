// CurveZMQ key files, in the ZeroMQ ecosystem's certificate format: the ZPL
// text that CZMQ's zcert and pyzmq's zmq.auth.create_certificates write and
// read, so keys made by any of them work here and the other way round.
//
//   NAME.key          the public key:           curve / public-key = "<Z85>"
//   NAME.key_secret   the public and secret keys (mode 0600): + secret-key = "<Z85>"
//
// Keys are kept as Z85 text (40 characters for 32 bytes), the form libzmq's
// ZMQ_CURVE_* socket options take. Parsing is strict where it matters (each
// key must decode to 32 bytes, a secret file's public key must be the one its
// secret key yields) and lenient where the tools differ (comments, metadata
// entries, quoting, indentation). Every error names the file and what to do.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "messages/result.hpp"

namespace kvpaxos {

struct CurveKey {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty for a public key file
};

// A fresh key pair from libsodium (through libzmq).
CurveKey generate_curve_key();

// True when `z85` is 40 Z85 characters that decode to 32 bytes.
bool valid_z85_key(std::string_view z85);

// The text of NAME.key (secret = false) or NAME.key_secret (secret = true).
std::string format_key_file(const CurveKey& key, bool secret);
// Parses a key file's text; `origin` names it in errors. With `need_secret`,
// the secret key must be there and match the public key.
Result<CurveKey> parse_key_file(std::string_view text, bool need_secret, const std::string& origin);

// Reads NAME.key.
Result<CurveKey> read_public_key_file(const std::string& path);
// Reads NAME.key_secret; refuses one that group or others may read (the
// file is the node's identity: whoever reads it can impersonate the node).
Result<CurveKey> read_secret_key_file(const std::string& path);
// Writes DIR/NAME.key (0644) and DIR/NAME.key_secret (0600), creating DIR
// (0700). Refuses to overwrite an existing NAME.key_secret.
Result<bool> write_key_files(const std::string& dir, const std::string& name, const CurveKey& key);

// Every DIR/*.key (public key files), by file name without ".key", sorted.
struct NamedKey {
  std::string name;
  CurveKey key;
};
Result<std::vector<NamedKey>> read_public_keys_in(const std::string& dir);

// Makes `s` a CURVE client presenting `own` to a server whose public key is
// `server_public` (all Z85); call before connect.
void make_curve_client(zmq::socket_t& s, const CurveKey& own, const std::string& server_public);

}  // namespace kvpaxos

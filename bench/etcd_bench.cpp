// etcd_bench: the load of `kvctl bench`, against etcd's v3 JSON gateway, so
// bench/compare can run the same workload, with the same harness and the same
// report, on both systems.
//
//   etcd_bench --endpoints 127.0.0.1:2379,... --clients 64 --duration 10s
//              [--value-size 100] [--keys 1000] [--mix put=50,get=50] [-w json]
//
// Each client keeps one HTTP/1.1 keep-alive connection and one request
// outstanding. Puts are POST /v3/kv/put; gets are POST /v3/kv/range without
// "serializable", i.e. linearizable reads through etcd's Raft (ReadIndex).
// Appends have no etcd equivalent and are refused.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cmd/bench.hpp"

namespace {

using namespace kvpaxos;

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

// One keep-alive HTTP/1.1 connection to one etcd member; reconnects (to the
// next member) after an error.
class EtcdSession final : public bench::Session {
 public:
  EtcdSession(std::vector<std::string> endpoints, std::size_t first)
      : endpoints_(std::move(endpoints)), current_(first % endpoints_.size()) {}
  ~EtcdSession() override { disconnect(); }

  CallResult call(OpKind op, const std::string& key, const std::string& value) override {
    if (op == OpKind::append) return {Outcome::rejected, {}, "etcd has no append"};
    const std::string body = op == OpKind::put
        ? "{\"key\":\"" + base64(key) + "\",\"value\":\"" + base64(value) + "\"}"
        : "{\"key\":\"" + base64(key) + "\"}";
    const std::string path = op == OpKind::put ? "/v3/kv/put" : "/v3/kv/range";
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::string error;
      if (fd_ < 0 && !connect_current(error)) {
        next_endpoint();
        continue;
      }
      const std::string request = "POST " + path + " HTTP/1.1\r\nHost: etcd\r\nContent-Type: "
                                  "application/json\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\n\r\n" + body;
      int status = 0;
      std::string response;
      if (send_all(request) && read_response(status, response) && status == 200) {
        return {Outcome::ok, std::move(response), {}};
      }
      error = "etcd at " + endpoints_[current_] + " answered HTTP " + std::to_string(status);
      disconnect();
      next_endpoint();
      if (attempt == 1) return {Outcome::unknown, {}, error};
    }
    return {Outcome::unknown, {}, "no etcd member reachable"};
  }

 private:
  bool connect_current(std::string& error) {
    const std::string& ep = endpoints_[current_];
    const auto colon = ep.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(ep.substr(colon + 1))));
    if (inet_pton(AF_INET, ep.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
      error = "bad endpoint " + ep;
      return false;
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error = "cannot connect to " + ep + ": " + std::strerror(errno);
      disconnect();
      return false;
    }
    buffer_.clear();
    return true;
  }
  void disconnect() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void next_endpoint() { current_ = (current_ + 1) % endpoints_.size(); }
  bool send_all(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool fill() {
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  // Reads one response (Content-Length or chunked body).
  bool read_response(int& status, std::string& body) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return false;
    }
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    if (head.size() < 12) return false;
    status = std::atoi(head.c_str() + 9);
    std::string lower = head;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (const auto cl = lower.find("content-length:"); cl != std::string::npos) {
      const std::size_t len = std::strtoull(lower.c_str() + cl + 15, nullptr, 10);
      while (buffer_.size() < len) {
        if (!fill()) return false;
      }
      body = buffer_.substr(0, len);
      buffer_.erase(0, len);
      return true;
    }
    if (lower.find("transfer-encoding: chunked") == std::string::npos) return false;
    body.clear();
    for (;;) {
      std::size_t eol;
      while ((eol = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill()) return false;
      }
      const std::size_t len = std::strtoull(buffer_.c_str(), nullptr, 16);
      while (buffer_.size() < eol + 2 + len + 2) {
        if (!fill()) return false;
      }
      body.append(buffer_, eol + 2, len);
      buffer_.erase(0, eol + 2 + len + 2);
      if (len == 0) return true;
    }
  }

  std::vector<std::string> endpoints_;
  std::size_t current_;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"etcd_bench: the kvctl bench workload against etcd's JSON gateway"};
  std::string endpoints, duration = "10s", mix = "put=100", format = "text";
  bench::Config config;
  app.add_option("--endpoints", endpoints, "etcd client addresses HOST:PORT,...")->required();
  app.add_option("--clients", config.clients, "Concurrent clients")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--duration", duration, "Seconds, e.g. 10s")->capture_default_str();
  app.add_option("--value-size", config.value_bytes, "Bytes per put value")->capture_default_str();
  app.add_option("--keys", config.keys, "Key space")->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--mix", mix, "put=P,get=G (percent)")->capture_default_str();
  app.add_option("-w,--write-out", format, "text or json")->check(CLI::IsMember({"text", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::stringstream in(endpoints);
  for (std::string ep; std::getline(in, ep, ',');) {
    if (!ep.empty()) config.endpoints.push_back(ep);
  }
  Result<bench::Mix> parsed = bench::parse_mix(mix);
  if (!parsed.ok() || parsed->append != 0) {
    std::cerr << "etcd_bench: --mix " << (parsed.ok() ? "cannot append on etcd" : parsed.error())
              << "\n";
    return 2;
  }
  config.mix = parsed.value();
  if (duration.empty() || duration.back() != 's' || std::atoi(duration.c_str()) <= 0) {
    std::cerr << "etcd_bench: --duration takes whole seconds like 10s\n";
    return 2;
  }
  config.duration = std::chrono::seconds(std::atoi(duration.c_str()));
  config.json = format == "json";
  const std::vector<std::string> eps = config.endpoints;
  const bench::Report r = bench::run(config, [eps](int index) -> std::unique_ptr<bench::Session> {
    return std::make_unique<EtcdSession>(eps, static_cast<std::size_t>(index));
  });
  std::cout << (config.json ? bench::format_json(config, r) : bench::format_text(config, r));
  if (r.ok == 0) {
    std::cerr << "etcd_bench: no operation succeeded; is etcd running at " << endpoints << "?\n";
    return 1;
  }
  return 0;
}

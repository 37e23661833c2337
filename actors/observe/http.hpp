// The HTTP side of the metrics endpoint: parsing a request and choosing the
// response, with no socket (the HTTP thread, http_server.hpp, does the I/O).
//
// Only what a Prometheus scraper, a load balancer or curl sends is spoken:
// HTTP/1.0 or 1.1, GET or HEAD, one request per connection (the response
// says "Connection: close"). A request is at most kMaxRequestBytes (request
// line and headers; a body is refused), so a client cannot make the node
// buffer more than that per connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kvpaxos {

inline constexpr std::size_t kMaxRequestBytes = 8192;

struct HttpRequest {
  std::string method;
  std::string path;  // without the query string
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool head = false;  // a HEAD request: headers only
};

enum class ParseState { incomplete, complete, bad };

struct ParsedRequest {
  ParseState state = ParseState::incomplete;
  HttpRequest request;  // when complete
  HttpResponse error;   // when bad: the response to send before closing
};

// `buffered` is everything received on one connection so far.
ParsedRequest parse_request(std::string_view buffered);

// What the node's endpoints answer; each is asked only for its path.
struct HealthSource {
  virtual ~HealthSource() = default;
  virtual std::string metrics_text() const = 0;
  virtual std::string not_live_reason() const = 0;   // empty: live
  virtual std::string not_ready_reason() const = 0;  // empty: ready
};

// GET /metrics, /livez, /readyz, /health; 404 for any other path, 405 for
// any other method.
HttpResponse route(const HttpRequest& r, const HealthSource& source);

// The bytes of a response, headers included.
std::string serialize(const HttpResponse& r);

}  // namespace kvpaxos

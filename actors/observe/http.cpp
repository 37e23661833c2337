#include "actors/observe/http.hpp"

#include <cassert>

namespace kvpaxos {
namespace {

HttpResponse error(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body) + "\n";
  return r;
}

ParsedRequest bad(int status, std::string why) {
  return ParsedRequest{ParseState::bad, {}, error(status, std::move(why))};
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' ||
         c == '\'' || c == '*' || c == '+' || c == '^' || c == '`' || c == '|' || c == '~';
}

// Lower-case copy, for header names.
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A header line that announces a body: refused, GET and HEAD carry none.
bool announces_body(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string name = lower(line.substr(0, colon));
  if (name == "transfer-encoding") return true;
  if (name != "content-length") return false;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value != "0";
}

ParsedRequest parse_request_line(std::string_view line) {
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad(400, "malformed request line: expected METHOD SP PATH SP HTTP/1.x");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.empty()) return bad(400, "malformed request line: no method");
  for (const char c : method) {
    if (!is_token_char(c)) return bad(400, "malformed request line: bad character in the method");
  }
  if (target.empty() || target.front() != '/') {
    return bad(400, "malformed request line: the path must start with /");
  }
  for (const char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad(400, "malformed request line: control character in the path");
    }
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.substr(0, 5) == "HTTP/") return bad(505, "only HTTP/1.0 and HTTP/1.1 are served");
    return bad(400, "malformed request line: expected HTTP/1.0 or HTTP/1.1");
  }
  ParsedRequest p;
  p.state = ParseState::complete;
  p.request.method = std::string(method);
  p.request.path = std::string(target.substr(0, target.find('?')));
  return p;
}

}  // namespace

ParsedRequest parse_request(std::string_view buffered) {
  const auto end = buffered.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buffered.size() >= kMaxRequestBytes) {
      return bad(431, "request too large: at most " + std::to_string(kMaxRequestBytes) +
                          " bytes of request line and headers");
    }
    return {};
  }
  if (end + 4 > kMaxRequestBytes) {
    return bad(431, "request too large: at most " + std::to_string(kMaxRequestBytes) +
                        " bytes of request line and headers");
  }
  const std::string_view head = buffered.substr(0, end);
  const auto first = head.find("\r\n");
  ParsedRequest p = parse_request_line(head.substr(0, first));
  if (p.state != ParseState::complete) return p;
  // Another method is answered 405 whatever follows; its body is never read.
  if (p.request.method != "GET" && p.request.method != "HEAD") return p;
  if (buffered.size() > end + 4) {
    return bad(400, "bytes after the request: one request per connection, no body");
  }
  if (first == std::string_view::npos) return p;
  std::string_view rest = head.substr(first + 2);
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    if (line.find(':') == std::string_view::npos || line.front() == ' ' || line.front() == '\t') {
      return bad(400, "malformed header line: expected NAME: VALUE");
    }
    if (announces_body(line)) return bad(413, "a request body is not accepted (GET only)");
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 2);
  }
  return p;
}

HttpResponse route(const HttpRequest& r, const HealthSource& source) {
  const bool known = r.path == "/metrics" || r.path == "/livez" || r.path == "/readyz" ||
                     r.path == "/health";
  if (!known) return error(404, "no such path: " + r.path + " (try /metrics, /livez, /readyz, /health)");
  if (r.method != "GET" && r.method != "HEAD") {
    HttpResponse e = error(405, r.method + " is not allowed: only GET (and HEAD) are served");
    return e;
  }
  HttpResponse out;
  out.head = r.method == "HEAD";
  if (r.path == "/metrics") {
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = source.metrics_text();
    return out;
  }
  if (r.path == "/livez") {
    const std::string why = source.not_live_reason();
    out.status = why.empty() ? 200 : 503;
    out.body = (why.empty() ? std::string("ok") : why) + "\n";
    return out;
  }
  const std::string why = source.not_ready_reason();
  if (r.path == "/readyz") {
    out.status = why.empty() ? 200 : 503;
    out.body = (why.empty() ? std::string("ok") : why) + "\n";
    return out;
  }
  // etcd's /health: the same answer as /readyz, as JSON (503 when false, as etcd).
  out.content_type = "application/json";
  std::string escaped;
  for (const char c : why) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  out.status = why.empty() ? 200 : 503;
  out.body = std::string("{\"health\":\"") + (why.empty() ? "true" : "false") + "\",\"reason\":\"" +
             escaped + "\"}\n";
  return out;
}

std::string serialize(const HttpResponse& r) {
  assert(r.status >= 100 && r.status <= 599);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nConnection: close\r\n";
  if (r.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!r.head) out += r.body;
  return out;
}

}  // namespace kvpaxos

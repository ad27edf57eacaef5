#include "lib/control/http_endpoint.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "absl/strings/ascii.h"
#include "lib/control/control_target.h"

namespace nodedns::control {
namespace {

constexpr size_t kMaxHeaders = 100;
constexpr size_t kMaxTarget = 2048;

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) !=
                                                                   std::string_view::npos;
}

// Visible ASCII and, in header values, tabs and spaces; obs-text (bytes
// >= 0x80) is allowed in values as RFC 9110 does.
bool IsValueChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

absl::Status Bad(const std::string& why) { return absl::InvalidArgumentError(why); }

}  // namespace

absl::StatusOr<HttpRequest> ParseHttpRequest(std::string_view head) {
  size_t line_end = head.find("\r\n");
  if (line_end == std::string_view::npos) return Bad("no request line");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > 16) return Bad("bad method");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Bad("no HTTP version");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  for (char c : method) {
    if (!IsTokenChar(c)) return Bad("bad method");
  }
  if (target.empty() || target.size() > kMaxTarget || target[0] != '/') return Bad("bad request target");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return Bad("bad request target");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Bad("not HTTP/1.0 or HTTP/1.1");

  // Header lines up to the empty line that ends the head.
  size_t at = line_end + 2;
  for (size_t n = 0;; ++n) {
    size_t end = head.find("\r\n", at);
    if (end == std::string_view::npos) return Bad("the head does not end with an empty line");
    std::string_view h = head.substr(at, end - at);
    at = end + 2;
    if (h.empty()) break;
    if (n >= kMaxHeaders) return Bad("too many header lines");
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return Bad("a header line without a name");
    for (char c : h.substr(0, colon)) {
      if (!IsTokenChar(c)) return Bad("bad header name");
    }
    for (char c : h.substr(colon + 1)) {
      if (!IsValueChar(c)) return Bad("bad header value");
    }
  }
  HttpRequest r;
  r.method = std::string(method);
  r.path = std::string(target.substr(0, target.find('?')));
  return r;
}

std::string HttpResponse(int status, std::string_view reason, std::string_view content_type, std::string_view body,
                         bool head_only) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                  "\r\nContent-Type: " + std::string(content_type) +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
  if (status == 405) r += "Allow: GET, HEAD\r\n";
  r += "\r\n";
  if (!head_only) r += body;
  return r;
}

StreamServerOptions HttpEndpointOptions() {
  StreamServerOptions o;
  o.delimiter = "\r\n\r\n";
  o.max_request = 8192;
  o.request_timeout = absl::Seconds(1);
  o.answer_timeout = absl::Seconds(10);
  o.max_connections = 256;
  o.oversize = HttpResponse(431, "Request Header Fields Too Large", "text/plain", "request too large\n");
  o.internal_error = HttpResponse(500, "Internal Server Error", "text/plain", "internal error\n");
  return o;
}

std::string HandleHttpRequest(std::string_view head, ControlTarget& target, HttpPaths paths) {
  try {
    auto req = ParseHttpRequest(head);
    if (!req.ok()) {
      return HttpResponse(400, "Bad Request", "text/plain", "bad request: " + std::string(req.status().message()) + "\n");
    }
    bool head_only = req->method == "HEAD";
    if (req->method != "GET" && !head_only) {
      return HttpResponse(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n");
    }
    if (req->path == "/metrics" && paths.metrics) {
      return HttpResponse(200, "OK", "text/plain; version=0.0.4; charset=utf-8", PrometheusText(target.Stats()),
                          head_only);
    }
    if (req->path == "/healthz" && paths.probes) {
      HealthStatus h = target.Health();
      if (h.healthy) return HttpResponse(200, "OK", "text/plain", "ok\n", head_only);
      return HttpResponse(503, "Service Unavailable", "text/plain", h.detail + "\n", head_only);
    }
    if (req->path == "/readyz" && paths.probes) {
      if (target.Health().ready) return HttpResponse(200, "OK", "text/plain", "ready\n", head_only);
      return HttpResponse(503, "Service Unavailable", "text/plain", "not ready\n", head_only);
    }
    std::string served = paths.metrics && paths.probes ? "/metrics, /healthz, /readyz"
                         : paths.metrics                ? "/metrics (the probes have an address of their own)"
                                                        : "/healthz, /readyz (metrics have an address of their own)";
    return HttpResponse(404, "Not Found", "text/plain", "not found: " + served + "\n", head_only);
  } catch (const std::exception& e) {
    spdlog::error("http: internal error answering a request: {}", e.what());
  } catch (...) {
    spdlog::error("http: internal error answering a request");
  }
  return HttpResponse(500, "Internal Server Error", "text/plain", "internal error\n");
}

}  // namespace nodedns::control

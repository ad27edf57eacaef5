#ifndef NODEDNS_LIB_CONTROL_HTTP_ENDPOINT_H_
#define NODEDNS_LIB_CONTROL_HTTP_ENDPOINT_H_

// The HTTP endpoint's requests: /metrics (Prometheus text), /healthz and
// /readyz, over HTTP/1.x with one request per connection. The head (request
// line and headers, up to the empty line) is parsed strictly: a request line
// "METHOD /path HTTP/1.x", header lines "Name: value", no control characters.
// Bounded by the stream server (size, header deadline) before it gets here.
//
// HandleHttpRequest is the HTTP side's exception boundary: whatever a handler
// throws is logged and answered 500.
//
// Threading: the control loop's thread.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "lib/control/stream_server.h"

namespace nodedns::control {

class ControlTarget;

struct HttpRequest {
  std::string method;
  std::string path;  // without the query string
};

// InvalidArgument for anything that is not a well-formed request head.
absl::StatusOr<HttpRequest> ParseHttpRequest(std::string_view head);

std::string HttpResponse(int status, std::string_view reason, std::string_view content_type, std::string_view body,
                         bool head_only = false);

// The HTTP endpoint's limits (README "Limits"): the request head within 1 s
// of connecting and in 8 KiB, the answer written within 10 s, 256
// connections, the oldest idle one cut for a newcomer.
StreamServerOptions HttpEndpointOptions();

// Which paths a listener serves: /metrics, the probes (/healthz, /readyz),
// or both (one address for all, the default).
struct HttpPaths {
  bool metrics = true;
  bool probes = true;
};

// The whole response to `head`; a path this listener does not serve is 404.
std::string HandleHttpRequest(std::string_view head, ControlTarget& target, HttpPaths paths = {});

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_HTTP_ENDPOINT_H_

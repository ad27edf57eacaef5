// libFuzzer target for the HTTP endpoint (lib/control/http_endpoint): any
// request head gets one well-formed response with a status from the known
// set (never 500, which means an exception reached the boundary) and a
// Content-Length that matches its body; a head the parser accepts has a
// method and a path without control characters.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "lib/control/http_endpoint.h"
#include "tests/support/fake_control_target.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* target = new nodedns::testing::FakeControlTarget();
  std::string_view head(reinterpret_cast<const char*>(data), size);
  target->health.healthy = size % 2 == 0;
  target->health.ready = size % 3 != 0;
  std::string response = nodedns::control::HandleHttpRequest(head, *target);

  Check(response.rfind("HTTP/1.1 ", 0) == 0 && response.size() > 12);
  int status = std::stoi(response.substr(9, 3));
  Check(status == 200 || status == 400 || status == 404 || status == 405 || status == 503);
  size_t end = response.find("\r\n\r\n");
  Check(end != std::string::npos);
  size_t cl = response.find("Content-Length: ");
  Check(cl != std::string::npos && cl < end);
  size_t length = std::stoul(response.substr(cl + 16));
  size_t body = response.size() - end - 4;
  Check(body == length || body == 0);  // 0: a HEAD request

  auto req = nodedns::control::ParseHttpRequest(head);
  if (req.ok()) {
    Check(!req->method.empty() && !req->path.empty() && req->path[0] == '/');
    for (char c : req->method + req->path) Check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  } else {
    Check(status == 400);
  }
  return 0;
}

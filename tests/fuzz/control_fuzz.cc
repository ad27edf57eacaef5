// libFuzzer target for the control socket's request handling
// (lib/control/commands): any line is parsed once into a typed request and
// dispatched against a fake daemon with a real cache. Every line must get
// exactly one answer, a JSON object with a boolean "ok" and, when false, an
// "error" string; an "internal error" answer means an exception reached the
// boundary, which is a bug here. A handover or release request that parses
// must survive its builder's round trip.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "lib/control/commands.h"
#include "tests/support/fake_control_target.h"

namespace {

using nlohmann::json;
using nodedns::control::ControlRequest;
using nodedns::control::HandoverRequest;
using nodedns::control::ReleaseRequest;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // flush logs each call
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* target = new nodedns::testing::FakeControlTarget();
  std::string_view line(reinterpret_cast<const char*>(data), size);
  // Vary the daemon's side with the input, so every answer path is reached.
  target->reload_result = size % 3 == 0 ? absl::InvalidArgumentError("fake.toml:1: bad") : absl::OkStatus();
  target->peer_result = size % 2 == 0 ? absl::OkStatus() : absl::PermissionDeniedError("not a successor");
  target->health.healthy = size % 5 != 0;
  nodedns::control::PeerCredentials peer{true, 1, 0, 0};

  int answers = 0;
  std::string answer;
  nodedns::control::HandleControlRequest(line, peer, *target, [&](std::string a) {
    ++answers;
    answer = std::move(a);
  });
  target->FinishSnapshots();
  Check(answers == 1);
  Check(!answer.empty() && answer.back() == '\n');
  json j = json::parse(answer, nullptr, false);
  Check(!j.is_discarded() && j.is_object());
  auto ok = j.find("ok");
  Check(ok != j.end() && ok->is_boolean());
  if (!ok->get<bool>()) {
    auto error = j.find("error");
    Check(error != j.end() && error->is_string());
    Check(error->get<std::string>().rfind("internal error", 0) != 0);
  }

  auto request = nodedns::control::ParseControlRequest(line);
  if (request.ok()) {
    if (const auto* h = std::get_if<HandoverRequest>(&*request)) {
      auto again = nodedns::control::ParseControlRequest(nodedns::control::HandoverRequestJson(*h).dump());
      Check(again.ok());
      const auto& h2 = std::get<HandoverRequest>(*again);
      Check(h2.pid == h->pid && h2.protocol == h->protocol && h2.version == h->version);
    } else if (const auto* r = std::get_if<ReleaseRequest>(&*request)) {
      auto again = nodedns::control::ParseControlRequest(nodedns::control::ReleaseRequestJson(*r).dump());
      Check(again.ok());
      Check(std::get<ReleaseRequest>(*again).addresses == r->addresses);
    }
  }
  // flush all / flush NAME empty the cache: refill it for the next input.
  if (target->Cache().entries() < 5) target->ResetCache();
  return 0;
}

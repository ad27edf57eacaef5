// libFuzzer target for the configuration loader with --check-config's
// semantics (BuildConfigFromText: the limits scan, toml++, every key's checks,
// flags, resolv.conf), the code a reload runs on whatever file an operator
// or a careless process leaves behind. Nothing may crash, overflow the stack
// or take long; whatever is accepted must be within the documented limits.
//
// The first byte chooses the mode: even, the rest is the file; odd, the next
// three bytes give a size from 1 byte to 16 MB (logarithmically: a power of
// two from the first, a fraction of it from the others, so small files stay
// common and runs fast) and the rest is PREFIX NUL UNIT NUL SUFFIX (or just
// UNIT): UNIT is repeated up to the size between the two, to reach deep
// nesting ("[" "a." "]", "x = " "[" "") and files over the size limit
// without the fuzzer having to grow such inputs itself.

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "lib/config/command_line.h"
#include "lib/config/config.h"
#include "lib/config/text_check.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string* resolv_conf;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  char dir[] = "/tmp/nodedns-config-fuzz-XXXXXX";
  if (mkdtemp(dir) == nullptr) abort();
  resolv_conf = new std::string(std::string(dir) + "/resolv.conf");
  std::ofstream(*resolv_conf) << "nameserver 192.0.2.53\n";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // Reused: fresh pages for a 16 MB file on every run would cost more than
  // everything else the run does.
  static std::string text, body;
  text.clear();
  if (data[0] % 2 == 0 || size < 5) {
    text.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  } else {
    size_t power = size_t{1} << (data[1] % 25);  // up to 16 MB
    size_t want = power + (size_t{data[2]} << 8 | data[3]) * power / 65536;
    std::string_view rest(reinterpret_cast<const char*>(data + 4), size - 4);
    std::string_view prefix, unit = rest, suffix;
    if (size_t a = rest.find('\0'), b = rest.rfind('\0'); a != b) {
      prefix = rest.substr(0, a);
      unit = rest.substr(a + 1, b - a - 1);
      suffix = rest.substr(b + 1);
    }
    body.assign(unit);
    while (!body.empty() && body.size() * 2 <= want) body += body;  // doubling: a 16 MB file costs a few copies
    text.reserve(prefix.size() + want + suffix.size());
    text += prefix;
    text += body;
    text += suffix;
  }
  nodedns::config::CommandLine cl;
  cl.resolv_conf = *resolv_conf;
  auto c = nodedns::config::BuildConfigFromText(cl, text, "fuzz.toml");
  if (!c.ok()) {
    Check(!c.status().message().empty());
    return 0;
  }
  Check(text.size() <= nodedns::config::kMaxConfigBytes);
  Check(!c->zones.empty() && c->zones.size() <= nodedns::config::kMaxZones);
  Check(!c->listen.empty());
  Check(nodedns::config::Validate(*c).ok());
  for (const auto& z : c->zones) Check(!z.servers.empty() && !z.use_resolv_conf);
  return 0;
}

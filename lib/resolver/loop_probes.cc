#include "lib/resolver/loop_probes.h"

#include <cstring>

#include "lib/dns/constants.h"
#include "lib/dns/name.h"

namespace nodedns::resolver {

void LoopProbes::Arm(const std::vector<std::string>& names) {
  MutexLock lock(&mu_);
  hits_.clear();
  for (const std::string& n : names) hits_[dns::Lowercase(n)] = 0;
  armed_.store(!hits_.empty(), std::memory_order_release);
}

void LoopProbes::Disarm() {
  armed_.store(false, std::memory_order_release);
}

bool LoopProbes::Seen(std::string_view qname_wire) {
  if (!armed_.load(std::memory_order_relaxed)) return false;
  uint8_t buf[dns::kMaxNameLength];
  if (qname_wire.size() > sizeof(buf)) return false;
  std::memcpy(buf, qname_wire.data(), qname_wire.size());
  dns::LowercaseInPlace(buf, qname_wire.size());
  MutexLock lock(&mu_);
  auto it = hits_.find(absl::string_view(reinterpret_cast<const char*>(buf), qname_wire.size()));
  if (it == hits_.end()) return false;
  ++it->second;
  return true;
}

int LoopProbes::hits(std::string_view name_wire) const {
  MutexLock lock(&mu_);
  auto it = hits_.find(dns::Lowercase(name_wire));
  return it == hits_.end() ? 0 : it->second;
}

}  // namespace nodedns::resolver

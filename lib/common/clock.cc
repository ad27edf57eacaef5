#include "lib/common/clock.h"

namespace nodedns {

SystemClock* SystemClock::Get() {
  static SystemClock* const kClock = new SystemClock();
  return kClock;
}

}  // namespace nodedns

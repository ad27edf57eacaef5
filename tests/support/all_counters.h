#ifndef NODEDNS_TESTS_SUPPORT_ALL_COUNTERS_H_
#define NODEDNS_TESTS_SUPPORT_ALL_COUNTERS_H_

// Every data-plane component's counters in one object, for tests that wire
// several components together (listener, resolver, pool, channel): it
// converts to each component's Counters*, and each counter is a member by
// its own name (names are unique across the lists).

#include "lib/resolver/counters.h"
#include "lib/server/counters.h"
#include "lib/upstream/counters.h"

namespace nodedns {

struct AllCounters : server::Counters, resolver::Counters, upstream::Counters {};

}  // namespace nodedns

#endif  // NODEDNS_TESTS_SUPPORT_ALL_COUNTERS_H_

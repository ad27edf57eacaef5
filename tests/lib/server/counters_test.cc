// The exported set is the composition of every component's counter list:
// names must not collide across lists (a collision would sum two different
// things), and every counter needs a help text for /metrics.

#include "lib/server/counters.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "lib/cache/cache.h"
#include "lib/common/metrics.h"
#include "lib/resolver/counters.h"
#include "lib/upstream/counters.h"

namespace nodedns {
namespace {

TEST(ExportedCountersTest, EveryComponentListHasUniqueNamesAndHelp) {
  server::Counters s;
  resolver::Counters r;
  upstream::Counters u;
  cache::Cache::Counters c;
  MetricSet set;
  set.AddCounters("", "", s);
  set.AddCounters("", "", r);
  set.AddCounters("", "", u);
  set.AddCounters("", "cache_", c);
  size_t declared = 0;
  auto count = [&](const char*, const char*, uint64_t) { ++declared; };
  s.ForEachCounter(count);
  r.ForEachCounter(count);
  u.ForEachCounter(count);
  c.ForEachCounter(count);
  EXPECT_EQ(set.metrics().size(), declared) << "a counter name is declared by two components";
  std::set<std::string> prom;
  for (const Metric& m : set.metrics()) {
    EXPECT_GT(m.help.size(), 10u) << m.name;
    EXPECT_TRUE(prom.insert(m.PromName()).second) << m.PromName();
  }
  EXPECT_GT(declared, 50u);

  // The README's counter tables name every one.
  std::ifstream in(NODEDNS_README);
  ASSERT_TRUE(in) << NODEDNS_README;
  std::stringstream readme;
  readme << in.rdbuf();
  for (const Metric& m : set.metrics()) {
    EXPECT_NE(readme.str().find("| `" + m.name + "` | "), std::string::npos) << m.name << " is not in README.md";
  }
}

}  // namespace
}  // namespace nodedns

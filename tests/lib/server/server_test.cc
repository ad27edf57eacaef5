#include "lib/server/server.h"

#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"

namespace nodedns::server {
namespace {

using ::testing::HasSubstr;

// What /healthz and the systemd watchdog rely on: a worker whose loop is
// stuck stops beating, and is named.
TEST(ServerTest, AStuckWorkerLoopIsReportedAndRecovers) {
  config::Config c = config::DefaultConfig();
  c.listen = {*SocketAddress::Parse("127.0.0.1:0")};
  c.workers = 2;
  c.zones[0].servers = {*SocketAddress::Parse("127.0.0.1:1")};
  c.zones[0].use_resolv_conf = false;
  auto server = Server::Create(c, SystemSteadyClock::Get());
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Start();
  std::string why;
  EXPECT_TRUE((*server)->LoopsResponsive(absl::Seconds(1), &why)) << why;

  (*server)->Post(1, [] { std::this_thread::sleep_for(std::chrono::milliseconds(1200)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  why.clear();
  EXPECT_FALSE((*server)->LoopsResponsive(absl::Milliseconds(500), &why));
  EXPECT_THAT(why, HasSubstr("worker 1 silent for"));
  EXPECT_THAT(why, ::testing::Not(HasSubstr("worker 0")));

  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  why.clear();
  EXPECT_TRUE((*server)->LoopsResponsive(absl::Milliseconds(500), &why)) << why;

  // Upstream summaries come back from every worker, merged per server. Nothing
  // listens on 127.0.0.1:1: the zone probes of a new pool find that out
  // without a single client query, and the breaker opens on every worker.
  absl::StatusOr<std::vector<UpstreamSummary>> ups;
  for (int i = 0; i < 200; ++i) {
    ups = (*server)->Upstreams(absl::Seconds(1));
    ASSERT_TRUE(ups.ok()) << ups.status();
    if (!ups->empty() && (*ups)[0].workers_open == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ups->size(), 1u);
  EXPECT_EQ((*ups)[0].server, "127.0.0.1:1");
  EXPECT_TRUE((*ups)[0].open);
  EXPECT_EQ((*ups)[0].workers_open, 2);
  (*server)->Stop();
}

}  // namespace
}  // namespace nodedns::server

#include "lib/snapshot/keeper.h"

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "lib/common/clock.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "tests/lib/snapshot/snapshot_test_util.h"
#include "tests/support/daemon_process.h"

namespace nodedns::snapshot {
namespace {

// A real loop (the keeper writes on libuv's thread pool) and a real cache,
// with entries inserted at the steady clock's now, as the workers do.
class KeeperTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    for (auto& k : keepers_) k->Close();
    keepers_.clear();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  std::unique_ptr<cache::Cache> Warm(int n) {
    auto c = *cache::Cache::Create(cache::CacheOptions{});
    absl::Time now = SystemSteadyClock::Get()->Now();
    for (int i = 0; i < n; ++i) {
      std::string name = "n" + std::to_string(i) + ".example";
      EXPECT_TRUE(c->Insert(Key(name), Image(name, 300), now, absl::Hours(24)));
    }
    return c;
  }
  Keeper* Make(cache::Cache* c, std::string path) {
    keepers_.push_back(std::make_unique<Keeper>(&loop_, c, std::move(path)));
    EXPECT_TRUE(keepers_.back()->Init().ok());
    return keepers_.back().get();
  }

  uv_loop_t loop_;
  testing::TempDir dir_;
  std::vector<std::unique_ptr<Keeper>> keepers_;
};

TEST_F(KeeperTest, WritesOnTheThreadPoolAndASecondKeeperLoadsWhatWasWritten) {
  auto warm = Warm(3);
  std::string path = dir_.path() + "/cache.snap";
  Keeper* k = Make(warm.get(), path);
  int done = 0;
  k->WriteAsync([&](const TimedWrite& w) {
    ASSERT_TRUE(w.result.ok()) << w.result.status();
    EXPECT_EQ(w.result->entries, 3u);
    ++done;
  });
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(done, 1);
  EXPECT_EQ(k->stats().writes, 1u);
  EXPECT_EQ(k->stats().last_entries, 3u);
  EXPECT_NE(k->stats().last_write, absl::InfinitePast());

  auto cold = *cache::Cache::Create(cache::CacheOptions{});
  Keeper* loader = Make(cold.get(), path);
  loader->Load(Day);
  EXPECT_EQ(loader->stats().loaded_entries, 3u);
  EXPECT_EQ(cold->entries(), 3u);
  EXPECT_TRUE(loader->stats().load_error.empty());
}

TEST_F(KeeperTest, AFailedWriteKeepsThePreviousSnapshotAndIsCounted) {
  auto warm = Warm(2);
  std::string path = dir_.path() + "/cache.snap";
  Keeper* k = Make(warm.get(), path);
  ASSERT_TRUE(k->WriteNow().result.ok());
  std::string before = ReadFile(path);
  ASSERT_FALSE(before.empty());
  // The temporary file cannot be created: a directory is in its place.
  ASSERT_EQ(mkdir((path + ".tmp." + std::to_string(getpid())).c_str(), 0700), 0);
  (void)warm->Insert(Key("more.example"), Image("more.example", 300), SystemSteadyClock::Get()->Now(), absl::Hours(24));
  TimedWrite w = k->WriteNow();
  EXPECT_FALSE(w.result.ok());
  EXPECT_EQ(k->stats().writes, 1u);
  EXPECT_EQ(k->stats().write_failures, 1u);
  EXPECT_FALSE(k->stats().last_error.empty());
  EXPECT_EQ(ReadFile(path), before);
}

TEST_F(KeeperTest, OffWithoutAPathAndClosedKeepersRefuseWrites) {
  auto c = Warm(1);
  Keeper* off = Make(c.get(), "");
  EXPECT_FALSE(off->enabled());
  off->Load(Day);  // nothing to do
  absl::StatusCode code = absl::StatusCode::kOk;
  off->WriteAsync([&](const TimedWrite& w) { code = w.result.status().code(); });
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(code, absl::StatusCode::kFailedPrecondition);

  Keeper* k = Make(c.get(), dir_.path() + "/x.snap");
  k->Close();
  code = absl::StatusCode::kOk;
  k->WriteAsync([&](const TimedWrite& w) { code = w.result.status().code(); });
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(code, absl::StatusCode::kUnavailable);
}

TEST_F(KeeperTest, ADamagedFileIsMovedAsideAndTheCacheStartsEmpty) {
  std::string path = dir_.Write("cache.snap", "not a snapshot at all");
  auto c = *cache::Cache::Create(cache::CacheOptions{});
  Keeper* k = Make(c.get(), path);
  k->Load(Day);
  EXPECT_FALSE(k->stats().load_error.empty());
  EXPECT_EQ(c->entries(), 0u);
  EXPECT_EQ(access((path + ".bad").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace nodedns::snapshot

#include "lib/snapshot/snapshot.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <zlib.h>

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "tests/lib/snapshot/snapshot_test_util.h"
#include "tests/support/daemon_process.h"

namespace nodedns::snapshot {
namespace {

using cache::Cache;
using cache::LookupStatus;

class SnapshotTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> Make() { return *Cache::Create(cache::CacheOptions{}); }
  // A cache with a fresh entry (TTL 300), a stale one (expired 100 s ago,
  // stale allowance one day) and a negative-looking short one.
  std::unique_ptr<Cache> Warm() {
    auto c = Make();
    EXPECT_TRUE(c->Insert(Key("fresh.example"), Image("fresh.example", 300), clock_.Now(), absl::Hours(24)));
    EXPECT_TRUE(c->Insert(Key("stale.example"), Image("stale.example", 60), clock_.Now() - absl::Seconds(160),
                          absl::Hours(24)));
    EXPECT_TRUE(c->Insert(Key("gone.example"), Image("gone.example", 60), clock_.Now() - absl::Seconds(160),
                          absl::Seconds(105)));
    return c;
  }
  // Both clocks read now, on the test's boot.
  Moment At() const { return Moment{TimeBase{clock_.Now(), wall_.Now()}, kBoot}; }
  static inline const std::string kBoot = std::string("boot-id-16-octet");
  FakeClock clock_{absl::UnixEpoch() + absl::Hours(30)};  // steady: 30 h since boot
  FakeWallClock wall_{absl::FromUnixSeconds(1'750'000'000)};
  uint8_t out_[4096];
  cache::HitInfo info_;
};

TEST_F(SnapshotTest, RoundTripKeepsDeadlinesAndImages) {
  auto before = Warm();
  size_t n = 0;
  std::string data = Serialize(*before, At(), &n);
  EXPECT_EQ(n, 3u);
  // Restart 10 s later.
  clock_.Advance(absl::Seconds(10));
  wall_.Advance(absl::Seconds(10));
  auto after = Make();
  auto r = Parse(data, after.get(), At(), &Day);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries_in_file, 3u);
  EXPECT_EQ(r->loaded, 2u);
  EXPECT_EQ(r->expired, 1u);  // gone.example: 110 s past expiry, allowance 105 s
  EXPECT_EQ(r->written_at, wall_.Now() - absl::Seconds(10));
  EXPECT_TRUE(r->same_boot);

  ASSERT_EQ(after->Lookup(Key("fresh.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.age_seconds, 10u);  // the age goes on from before the restart
  dns::CacheImage img = Image("fresh.example", 300);
  ASSERT_EQ(info_.image_len, img.wire.size());
  EXPECT_EQ(0, memcmp(out_, img.wire.data(), img.wire.size()));
  EXPECT_EQ(info_.num_ttls, 2);

  ASSERT_EQ(after->Lookup(Key("stale.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
  EXPECT_EQ(info_.stale_seconds, 110u);
  EXPECT_EQ(after->Lookup(Key("gone.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
}

TEST_F(SnapshotTest, CurrentZoneMaxStaleShortensTheAllowance) {
  auto before = Warm();
  std::string data = Serialize(*before, At());
  auto after = Make();
  // The zone's max_stale is now 50 s: stale.example (100 s past expiry) goes.
  auto r = Parse(data, after.get(), At(), [](std::string_view) { return absl::Seconds(50); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->loaded, 1u);
  EXPECT_EQ(r->expired, 2u);
  EXPECT_EQ(after->Lookup(Key("stale.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
}

TEST_F(SnapshotTest, DamagedFilesInsertNothing) {
  auto before = Warm();
  std::string good = Serialize(*before, At());
  struct Case {
    std::string name;
    std::string data;
    absl::StatusCode code;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  std::string version = good;
  version[11] = 9;
  std::vector<Case> cases = {
      {"empty", "", absl::StatusCode::kInvalidArgument},
      {"foreign", "#!/bin/sh\necho hello\n", absl::StatusCode::kInvalidArgument},
      {"truncated header", good.substr(0, 20), absl::StatusCode::kDataLoss},
      {"truncated", good.substr(0, good.size() - 7), absl::StatusCode::kDataLoss},
      {"one bit flipped", flipped, absl::StatusCode::kDataLoss},
      {"newer version", version, absl::StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    auto after = Make();
    auto r = Parse(c.data, after.get(), At(), &Day);
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    EXPECT_EQ(after->entries(), 0u) << c.name;
  }
}

TEST_F(SnapshotTest, EntryBoundsAreCheckedEvenWithAValidChecksum) {
  // A file whose checksum is right but whose entry lies about its sizes
  // (a bug, or a crafted file) is refused without reading out of bounds.
  auto one = Make();
  one->Insert(Key("fresh.example"), Image("fresh.example", 300), clock_.Now(), absl::Hours(24));
  std::string data = Serialize(*one, At());
  std::string body = data.substr(0, data.size() - 4);
  // The first TTL offset sits after key_len(2) key kind(1) 3 x i64 num_ttls(2).
  size_t key_len = Key("fresh.example").size();
  size_t ttl_at = 56 + 2 + key_len + 1 + 24 + 2;
  body[ttl_at] = static_cast<char>(0xff);
  uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.data()), body.size());
  for (int i = 3; i >= 0; --i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  auto after = Make();
  auto r = Parse(body, after.get(), At(), &Day);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_EQ(after->entries(), 0u);
}

TEST_F(SnapshotTest, WriteIsAtomicAndAFailedWriteKeepsThePreviousFile) {
  testing::TempDir dir;
  std::string path = dir.path() + "/cache.snap";
  auto c = Warm();
  auto w = Write(*c, path, At());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->entries, 3u);
  std::string first = ReadFile(path);
  EXPECT_EQ(first.size(), w->bytes);
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  EXPECT_EQ(access(tmp.c_str(), F_OK), -1);

  // The next write cannot create its temporary file: the previous snapshot
  // stays byte for byte.
  c->Insert(Key("more.example"), Image("more.example", 300), clock_.Now());
  ASSERT_EQ(mkdir(tmp.c_str(), 0700), 0);
  auto failed = Write(*c, path, At());
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find(tmp), std::string::npos) << failed.status();
  EXPECT_EQ(ReadFile(path), first);
  rmdir(tmp.c_str());

  auto loaded = Make();
  auto r = Load(path, loaded.get(), At(), &Day);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->loaded, 3u);  // the first snapshot's three, not more.example

  EXPECT_EQ(Load(dir.path() + "/missing.snap", loaded.get(), At(), &Day).status().code(),
            absl::StatusCode::kNotFound);
}

// Recomputes the trailing CRC-32 after a test changed the body.
std::string Reseal(std::string data) {
  std::string body = data.substr(0, data.size() - 4);
  uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.data()), body.size());
  for (int i = 3; i >= 0; --i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return body;
}

TEST_F(SnapshotTest, AWallClockStepBetweenWriteAndLoadChangesNothingOnTheSameBoot) {
  for (absl::Duration step : {absl::Hours(-1), absl::Hours(1), absl::Hours(-24 * 365)}) {
    auto before = Warm();
    std::string data = Serialize(*before, At());
    clock_.Advance(absl::Seconds(10));
    wall_.Advance(absl::Seconds(10) + step);  // NTP, a resumed VM, `date -s`
    auto after = Make();
    auto r = Parse(data, after.get(), At(), &Day);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->same_boot);
    EXPECT_EQ(r->loaded, 2u) << step;
    ASSERT_EQ(after->Lookup(Key("fresh.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
    EXPECT_EQ(info_.age_seconds, 10u) << step;
    ASSERT_EQ(after->Lookup(Key("stale.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
    EXPECT_EQ(info_.stale_seconds, 110u) << step;
    wall_.Advance(-step);
  }
}

TEST_F(SnapshotTest, AfterARebootDeadlinesCrossThroughTheWallClock) {
  auto before = Warm();
  std::string data = Serialize(*before, At());
  // Rebooted: another boot id, the steady clock starts again near zero, and
  // 60 s of wall time passed.
  clock_.Set(absl::UnixEpoch() + absl::Seconds(5));
  wall_.Advance(absl::Seconds(60));
  auto after = Make();
  auto r = Parse(data, after.get(), Moment{TimeBase{clock_.Now(), wall_.Now()}, "another-boot-id!"}, &Day);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->same_boot);
  ASSERT_EQ(after->Lookup(Key("fresh.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.age_seconds, 60u);
  ASSERT_EQ(after->Lookup(Key("stale.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
  EXPECT_EQ(info_.stale_seconds, 160u);
}

TEST_F(SnapshotTest, Version1FilesAreReadThroughTheWallClock) {
  auto before = Warm();
  std::string v2 = Serialize(*before, At());
  // Version 1: the same without the boot id and steady time in the header.
  std::string v1 = v2.substr(0, 32) + v2.substr(56);
  v1[11] = 1;
  v1 = Reseal(v1);
  clock_.Advance(absl::Seconds(10));
  wall_.Advance(absl::Seconds(10));
  auto after = Make();
  auto r = Parse(v1, after.get(), At(), &Day);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->same_boot);
  EXPECT_EQ(r->loaded, 2u);
  ASSERT_EQ(after->Lookup(Key("fresh.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.age_seconds, 10u);
}

TEST_F(SnapshotTest, ExtremeDeadlinesBehindAValidChecksumAreDamage) {
  // Found by UBSan under the snapshot fuzzer: deadlines near INT64_MIN/MAX
  // overflowed the millisecond arithmetic. Now they are damage.
  auto one = Make();
  one->Insert(Key("fresh.example"), Image("fresh.example", 300), clock_.Now(), absl::Hours(24));
  std::string good = Serialize(*one, At());
  size_t inserted_at = 56 + 2 + Key("fresh.example").size() + 1;
  for (uint64_t extreme : {uint64_t{0x8000000000000000}, uint64_t{0x7fffffffffffffff}}) {
    std::string bad = good;
    for (int field = 0; field < 3; ++field) {
      for (int i = 0; i < 8; ++i) bad[inserted_at + 8 * field + i] = static_cast<char>((extreme >> (8 * (7 - i))) & 0xff);
    }
    auto after = Make();
    auto r = Parse(Reseal(bad), after.get(), At(), &Day);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_EQ(after->entries(), 0u);
  }
  // In order (inserted = expires = INT64_MIN, stale_until = INT64_MAX), so
  // only the range check stops them: stale_until - expires overflowed
  // (corpus file snapshot/bug_extreme_deadlines_in_order).
  {
    std::string bad = good;
    const uint64_t in_order[3] = {uint64_t{0x8000000000000000}, uint64_t{0x8000000000000000},
                                  uint64_t{0x7fffffffffffffff}};
    for (int field = 0; field < 3; ++field) {
      for (int i = 0; i < 8; ++i) {
        bad[inserted_at + 8 * field + i] = static_cast<char>((in_order[field] >> (8 * (7 - i))) & 0xff);
      }
    }
    auto after = Make();
    auto r = Parse(Reseal(bad), after.get(), At(), &Day);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_EQ(after->entries(), 0u);
  }
  // And a write time centuries away.
  std::string bad = good;
  bad[16] = 0x7f;
  auto r = Parse(Reseal(bad), Make().get(), At(), &Day);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

}  // namespace
}  // namespace nodedns::snapshot

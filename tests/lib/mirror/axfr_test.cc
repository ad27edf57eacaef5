// The zone mirror's wire side (lib/mirror/axfr.h) against in-process fake
// servers: the SOA serial, whole transfers, and every way a transfer is
// refused (cut, wrong start, zone changed, caps, rcode, timeout), and the
// cache side (Install): one entry per name and type, fresher entries kept.

#include "lib/mirror/axfr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/cache/cache.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "lib/mirror/mirror.h"
#include "tests/support/fake_clock.h"

namespace nodedns::mirror {
namespace {

using ::testing::HasSubstr;

std::string W(const std::string& text) { return *dns::NameFromText(text); }

dns::Record Soa(uint32_t serial) {
  std::string rdata = W("ns.zone.test") + W("admin.zone.test");
  for (uint32_t v : {serial, 3600u, 600u, 86400u, 5u}) {
    for (int s = 24; s >= 0; s -= 8) rdata.push_back(static_cast<char>((v >> s) & 0xff));
  }
  return {W("zone.test"), dns::kTypeSOA, dns::kClassIN, 5, rdata};
}

dns::Record A(const std::string& name, uint8_t last, uint32_t ttl = 5) {
  return {W(name), dns::kTypeA, dns::kClassIN, ttl, std::string("\x0a\x60\x00", 3) + static_cast<char>(last)};
}

// One AXFR answer message with `records`, answering query `id`.
std::vector<uint8_t> Message(uint16_t id, std::vector<dns::Record> records, uint16_t rcode = 0) {
  dns::Message m;
  m.id = id;
  m.flags = dns::kFlagQR | dns::kFlagAA;
  m.set_rcode(rcode);
  m.questions.push_back({W("zone.test"), dns::kTypeAXFR, dns::kClassIN});
  m.answers = std::move(records);
  return *dns::WriteMessage(m);
}

// A TCP server on 127.0.0.1 that reads one framed query and writes what
// `respond` makes of its ID (framed), then closes.
class FakeXfr {
 public:
  explicit FakeXfr(std::function<std::vector<std::vector<uint8_t>>(uint16_t)> respond) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 4);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = *SocketAddress::Parse("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
    thread_ = std::thread([this, respond] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      uint8_t buf[512];
      ssize_t n = recv(c, buf, sizeof(buf), 0);
      uint16_t id = n >= 4 ? static_cast<uint16_t>((buf[2] << 8) | buf[3]) : 0;
      for (const auto& m : respond(id)) {
        uint8_t len[2] = {static_cast<uint8_t>(m.size() >> 8), static_cast<uint8_t>(m.size())};
        (void)!send(c, len, 2, MSG_NOSIGNAL);
        (void)!send(c, m.data(), m.size(), MSG_NOSIGNAL);
      }
      if (hold_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms_));
      close(c);
    });
  }
  ~FakeXfr() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  const SocketAddress& address() const { return address_; }
  int hold_ms_ = 0;

 private:
  int fd_;
  SocketAddress address_;
  std::thread thread_;
};

// Answers SOA queries over UDP on `port` with Soa(serial).
class FakeSoa {
 public:
  FakeSoa(uint16_t port, uint32_t serial) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread([this, serial] {
      while (!stop_) {
        uint8_t buf[512];
        sockaddr_in from{};
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0) continue;
        auto q = dns::ParseMessage({buf, static_cast<size_t>(n)});
        if (!q.ok()) continue;
        dns::Message r = *q;
        r.flags |= dns::kFlagQR | dns::kFlagAA;
        r.answers.push_back(Soa(serial));
        auto wire = dns::WriteMessage(r);
        sendto(fd_, wire->data(), wire->size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~FakeSoa() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

 private:
  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(AxfrTest, SoaSerialReadsUncompressedRdataOnly) {
  EXPECT_EQ(SoaSerial(Soa(2024121101).rdata), 2024121101u);
  EXPECT_FALSE(SoaSerial(Soa(1).rdata.substr(0, 10)).has_value());
  EXPECT_FALSE(SoaSerial(std::string("\xc0\x0c", 2) + std::string(22, '\0')).has_value());  // a pointer
  EXPECT_FALSE(SoaSerial("").has_value());
}

TEST(AxfrTest, AWholeTransferAcrossMessages) {
  FakeXfr server([](uint16_t id) {
    return std::vector<std::vector<uint8_t>>{Message(id, {Soa(7), A("a.zone.test", 1), A("b.zone.test", 2)}),
                                             Message(id, {A("b.zone.test", 3), Soa(7)})};
  });
  auto zone = Transfer(server.address(), W("zone.test"), TransferLimits{});
  ASSERT_TRUE(zone.ok()) << zone.status();
  EXPECT_EQ(zone->serial, 7u);
  EXPECT_EQ(zone->records.size(), 3u);
}

TEST(AxfrTest, EveryIncompleteOrWrongTransferIsAnError) {
  struct Case {
    const char* what;
    std::function<std::vector<std::vector<uint8_t>>(uint16_t)> respond;
    TransferLimits limits;
    const char* error;
  };
  TransferLimits small;
  small.max_records = 2;
  TransferLimits few_bytes;
  few_bytes.max_bytes = 100;
  TransferLimits quick;
  quick.timeout = absl::Milliseconds(300);
  std::vector<Case> cases = {
      {"cut before the closing SOA", [](uint16_t id) { return std::vector<std::vector<uint8_t>>{Message(id, {Soa(7), A("a.zone.test", 1)})}; },
       {}, "closed the connection mid-transfer"},
      {"not starting with the SOA", [](uint16_t id) { return std::vector<std::vector<uint8_t>>{Message(id, {A("a.zone.test", 1), Soa(7)})}; },
       {}, "does not start with the zone's SOA"},
      {"changed during it", [](uint16_t id) { return std::vector<std::vector<uint8_t>>{Message(id, {Soa(7), A("a.zone.test", 1), Soa(8)})}; },
       {}, "the zone changed during it"},
      {"over the record cap", [](uint16_t id) {
         return std::vector<std::vector<uint8_t>>{Message(id, {Soa(7), A("a.zone.test", 1), A("b.zone.test", 2), A("c.zone.test", 3), Soa(7)})};
       }, small, "over the cap of 2 records"},
      {"over the byte cap", [](uint16_t id) {
         return std::vector<std::vector<uint8_t>>{Message(id, {Soa(7), A("a.zone.test", 1), A("b.zone.test", 2), Soa(7)})};
       }, few_bytes, "over the cap of 100 bytes"},
      {"refused", [](uint16_t id) { return std::vector<std::vector<uint8_t>>{Message(id, {}, dns::kRefused)}; },
       {}, "refused by the server"},
      {"someone else's ID", [](uint16_t id) { return std::vector<std::vector<uint8_t>>{Message(id + 1, {Soa(7), Soa(7)})}; },
       {}, "not an answer to our query"},
      {"garbage", [](uint16_t) { return std::vector<std::vector<uint8_t>>{{1, 2, 3}}; }, {}, "does not parse"},
      {"silent", [](uint16_t) { return std::vector<std::vector<uint8_t>>{}; }, quick, "timed out"},
  };
  for (const Case& c : cases) {
    FakeXfr server(c.respond);
    if (std::string(c.what) == "silent") server.hold_ms_ = 600;
    auto zone = Transfer(server.address(), W("zone.test"), c.limits);
    ASSERT_FALSE(zone.ok()) << c.what;
    EXPECT_THAT(std::string(zone.status().message()), HasSubstr(c.error)) << c.what;
  }
}

TEST(AxfrTest, InstallStoresOneEntryPerNameAndTypeAndKeepsFresherOnes) {
  FakeClock clock;
  auto cache = *cache::Cache::Create(cache::CacheOptions{});
  Zone zone;
  zone.serial = 7;
  zone.soa = Soa(7);
  zone.records = {A("a.zone.test", 1, 30), A("A.Zone.Test", 2, 30), A("b.zone.test", 3, 30),
                  {W("_http._tcp.a.zone.test"), dns::kTypeSRV, dns::kClassIN, 30,
                   std::string("\0\0\0\0\0\x50", 6) + W("a.zone.test")},
                  // Not ours to answer: a name outside the zone, one that only
                  // ends like it, and a delegation with its glue.
                  A("registry.example", 66, 30), A("xzone.test", 67, 30),
                  {W("sub.zone.test"), dns::kTypeNS, dns::kClassIN, 30, W("ns.sub.zone.test")},
                  A("ns.sub.zone.test", 68, 30), A("deep.ns.sub.zone.test", 69, 30)};
  auto key = [](const std::string& name, uint16_t type) {
    std::string wire = dns::Lowercase(W(name));
    dns::CacheKey k;
    dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), type, dns::kClassIN, false, false, &k);
    return std::string(k.view());
  };
  // b was asked directly after the transfer began: its entry stays.
  absl::Time since = clock.Now();
  clock.Advance(absl::Seconds(1));
  dns::Message direct;
  direct.flags = dns::kFlagQR;
  direct.questions.push_back({W("b.zone.test"), dns::kTypeA, dns::kClassIN});
  direct.answers.push_back(A("b.zone.test", 99, 300));
  ASSERT_TRUE(cache->Insert(key("b.zone.test", dns::kTypeA), *dns::BuildCacheImage(direct, {}), clock.Now()));
  EXPECT_EQ(Install(zone, {}, cache.get(), clock.Now(), absl::Hours(1), since), 2u);  // a/A (both records), the SRV
  absl::Time ins, exp, until;
  ASSERT_TRUE(cache->Peek(key("a.zone.test", dns::kTypeA), &ins, &exp, &until));
  EXPECT_EQ(exp - ins, absl::Seconds(30));
  EXPECT_EQ(until - exp, absl::Hours(1));
  ASSERT_TRUE(cache->Peek(key("b.zone.test", dns::kTypeA), &ins, &exp, &until));
  EXPECT_EQ(exp - ins, absl::Seconds(300)) << "the direct answer was replaced";
  EXPECT_TRUE(cache->Peek(key("_http._tcp.a.zone.test", dns::kTypeSRV), &ins, &exp, &until));
  EXPECT_FALSE(cache->Peek(key("c.zone.test", dns::kTypeA), &ins, &exp, &until));  // nothing synthesised
  for (const char* outside : {"registry.example", "xzone.test", "ns.sub.zone.test", "deep.ns.sub.zone.test"}) {
    EXPECT_FALSE(cache->Peek(key(outside, dns::kTypeA), &ins, &exp, &until)) << outside;
  }
  EXPECT_FALSE(cache->Peek(key("sub.zone.test", dns::kTypeNS), &ins, &exp, &until));
}

TEST(MirrorTest, TransfersWaitForAHealthyZoneAndOnlyForANewSerial) {
  FakeXfr server([](uint16_t id) {
    return std::vector<std::vector<uint8_t>>{Message(id, {Soa(7), A("a.zone.test", 1), A("b.zone.test", 2), Soa(7)})};
  });
  FakeSoa soa(server.address().port(), 7);
  FakeClock clock;
  auto cache = *cache::Cache::Create(cache::CacheOptions{});
  bool healthy = false;
  std::vector<std::string> asked;
  Mirror mirror({{"zone.test.", {server.address()}, absl::Hours(1)}}, MirrorOptions{}, {}, cache.get(), &clock, 1,
                [&](const std::string& zone) {
                  asked.push_back(zone);
                  return healthy;
                });
  // The serial is new, but the zone is not healthy: put off.
  mirror.CheckZone(0);
  MirrorStatus st = mirror.Status()[0];
  EXPECT_EQ(asked, std::vector<std::string>{"zone.test."});
  EXPECT_EQ(st.deferred, 1u);
  EXPECT_EQ(st.transfers, 0u);
  EXPECT_FALSE(st.have_serial);
  EXPECT_THAT(st.last_error, HasSubstr("deferred"));
  // Healthy: transferred and stored.
  healthy = true;
  mirror.CheckZone(0);
  st = mirror.Status()[0];
  EXPECT_EQ(st.transfers, 1u);
  EXPECT_EQ(st.serial, 7u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_EQ(st.last_error, "");
  // The same serial again: checked, nothing transferred (the fake server
  // would not accept a second connection anyway).
  mirror.CheckZone(0);
  st = mirror.Status()[0];
  EXPECT_EQ(st.checks, 3u);
  EXPECT_EQ(st.transfers, 1u);
  EXPECT_EQ(st.failures, 0u);
}

TEST(MirrorTest, AFailedTransferWaitsTheMinimumIntervalLikeAGoodOne) {
  // A server that cuts every transfer after the SOA.
  FakeXfr server([](uint16_t id) { return std::vector<std::vector<uint8_t>>{Message(id, {Soa(9), A("a.zone.test", 1)})}; });
  FakeSoa soa(server.address().port(), 9);
  FakeClock clock;
  auto cache = *cache::Cache::Create(cache::CacheOptions{});
  MirrorOptions o;
  o.limits.timeout = absl::Milliseconds(300);
  Mirror mirror({{"zone.test.", {server.address()}, absl::Hours(1)}}, o, {}, cache.get(), &clock, 1);
  mirror.CheckZone(0);
  EXPECT_EQ(mirror.Status()[0].failures, 1u);
  EXPECT_THAT(mirror.Status()[0].last_error, HasSubstr("mid-transfer"));
  // The serial still differs from what is stored, but the last attempt was
  // now: no new one before min_transfer_interval (300 s).
  clock.Advance(absl::Seconds(299));
  mirror.CheckZone(0);
  EXPECT_EQ(mirror.Status()[0].checks, 2u);
  EXPECT_EQ(mirror.Status()[0].failures, 1u) << "a failed zone was fetched again before the interval";
  clock.Advance(absl::Seconds(2));
  mirror.CheckZone(0);  // tried again (this fake accepts no second connection: timed out)
  EXPECT_EQ(mirror.Status()[0].failures, 2u);
  EXPECT_EQ(mirror.Status()[0].transfers, 0u);
}

TEST(MirrorTest, AReloadCarriesTheStateOverAndCostsNoTransfer) {
  FakeClock clock;
  auto cache = *cache::Cache::Create(cache::CacheOptions{});
  // A port nothing listens on for TCP: any transfer attempt would fail.
  FakeXfr idle([](uint16_t) { return std::vector<std::vector<uint8_t>>{}; });
  FakeSoa serial7(idle.address().port(), 7);
  MirrorStatus before;
  before.zone = "zone.test.";
  before.have_serial = true;
  before.serial = 7;
  before.transfers = 3;
  before.last_transfer = before.last_attempt = clock.Now();
  MirrorOptions o;
  o.limits.timeout = absl::Milliseconds(300);
  Mirror mirror({{"zone.test.", {idle.address()}, absl::Hours(1)}}, o, {}, cache.get(), &clock, 1);
  mirror.Adopt({before});
  mirror.CheckZone(0);
  MirrorStatus st = mirror.Status()[0];
  EXPECT_EQ(st.serial, 7u);
  EXPECT_EQ(st.transfers, 3u);
  EXPECT_EQ(st.failures, 0u) << "the reload cost a transfer attempt";
  EXPECT_EQ(st.checks, 1u);
}

}  // namespace
}  // namespace nodedns::mirror

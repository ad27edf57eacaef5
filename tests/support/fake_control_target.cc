#include "tests/support/fake_control_target.h"

#include <stdexcept>

#include "lib/dns/cache_image.h"
#include "lib/dns/constants.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::testing {
namespace {

std::string Key(const std::string& name, uint16_t type) {
  std::string wire = *dns::NameFromText(name);
  dns::CacheKey k;
  dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), type, dns::kClassIN, false, false,
                    &k);
  return std::string(k.view());
}

dns::CacheImage Image(const std::string& name, uint16_t type, uint32_t ttl) {
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRA;
  m.questions.push_back({*dns::NameFromText(name), type, dns::kClassIN});
  std::string rdata = type == dns::kTypeA ? std::string("\x0a\x00\x00\x01", 4) : std::string(16, '\x01');
  m.answers.push_back({*dns::NameFromText(name), type, dns::kClassIN, ttl, rdata});
  return *dns::BuildCacheImage(m, dns::ImagePolicy{});
}

}  // namespace

FakeControlTarget::FakeControlTarget() {
  cache::CacheOptions o;
  o.max_entries = 1024;
  o.max_bytes = 1 << 20;
  o.shards = 2;
  cache_ = *cache::Cache::Create(o);
  ResetCache();
}

void FakeControlTarget::ResetCache() {
  cache_->Clear();
  absl::Time now = absl::Now();
  for (const char* name : {"fresh.example", "other.example"}) {
    cache_->Insert(Key(name, dns::kTypeA), Image(name, dns::kTypeA, 300), now, absl::Hours(24));
    cache_->Insert(Key(name, dns::kTypeAAAA), Image(name, dns::kTypeAAAA, 300), now, absl::Hours(24));
  }
  cache_->Insert(Key("stale.example", dns::kTypeA), Image("stale.example", dns::kTypeA, 60),
                 now - absl::Seconds(160), absl::Hours(24));
}

control::StatsSnapshot FakeControlTarget::Stats() {
  if (throw_from_stats) throw std::runtime_error("stats exploded");
  control::StatsSnapshot s;
  s.version = "test";
  s.now = absl::Now();
  s.started_at = s.now - absl::Seconds(10);
  cache_->AppendMetrics(&s.metrics);
  upstream::UpstreamSummary u;
  u.zone = ".";
  u.server = "192.0.2.1:53";
  s.upstreams.push_back(u);
  return s;
}

std::vector<control::ZoneSummary> FakeControlTarget::Zones() { return {{".", {"192.0.2.1:53"}, 86400, false}}; }

absl::StatusOr<nlohmann::json> FakeControlTarget::Reload() {
  ++reloads;
  if (!reload_result.ok()) return reload_result;
  return nlohmann::json{{"notes", nlohmann::json::array()}, {"source", "fake.toml"}};
}

void FakeControlTarget::Snapshot(Done done) { snapshot_waiters_.push_back(std::move(done)); }

void FakeControlTarget::FinishSnapshots() {
  std::vector<Done> waiters;
  waiters.swap(snapshot_waiters_);
  for (auto& done : waiters) done(nlohmann::json{{"path", "/fake.snap"}, {"entries", cache_->entries()}});
}

absl::StatusOr<nlohmann::json> FakeControlTarget::Handover(const control::HandoverRequest& request,
                                                           const control::PeerCredentials&) {
  handovers.push_back(request);
  if (!peer_result.ok()) return peer_result;
  return nlohmann::json{{"pid", 1}, {"entries", 0}};
}

absl::StatusOr<nlohmann::json> FakeControlTarget::Release(const control::ReleaseRequest& request,
                                                          const control::PeerCredentials&) {
  releases.push_back(request);
  if (!peer_result.ok()) return peer_result;
  return nlohmann::json{{"pid", 1}};
}

}  // namespace nodedns::testing

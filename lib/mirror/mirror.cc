#include "lib/mirror/mirror.h"

#include <spdlog/spdlog.h>

#include <map>
#include <utility>

#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::mirror {

size_t Install(const Zone& zone, const dns::ImagePolicy& policy, cache::Cache* cache, absl::Time now,
               absl::Duration max_stale, absl::Time since, const std::atomic<bool>* cancel) {
  std::string apex = dns::Lowercase(zone.soa.name);
  // Delegations inside the zone: what is at or below a cut is the child
  // zone's, not ours (referral data and glue, not answers).
  std::vector<std::string> cuts;
  for (const dns::Record& r : zone.records) {
    std::string owner = dns::Lowercase(r.name);
    if (r.type == dns::kTypeNS && owner != apex && dns::IsSubdomain(owner, apex)) cuts.push_back(owner);
  }
  // RRsets by (lowercased name, type), in a stable order; only names in the
  // zone (a server may send anything: the mirror takes no authority).
  std::map<std::pair<std::string, uint16_t>, std::vector<const dns::Record*>> sets;
  for (const dns::Record& r : zone.records) {
    if (r.klass != dns::kClassIN || r.type == dns::kTypeSOA || r.type == dns::kTypeRRSIG) continue;
    std::string owner = dns::Lowercase(r.name);
    if (!dns::IsSubdomain(owner, apex)) continue;
    bool delegated = false;
    for (const std::string& cut : cuts) delegated = delegated || dns::IsSubdomain(owner, cut);
    if (delegated) continue;
    sets[{owner, r.type}].push_back(&r);
  }
  size_t stored = 0;
  for (const auto& [name_type, records] : sets) {
    if (cancel && cancel->load(std::memory_order_relaxed)) break;
    const auto& [name, type] = name_type;
    dns::CacheKey key;
    dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(name.data()), name.size(), type, dns::kClassIN,
                      /*dnssec_ok=*/false, /*checking_disabled=*/false, &key);
    dns::Message m;
    m.flags = dns::kFlagQR | dns::kFlagRD | dns::kFlagRA;
    m.questions.push_back({name, type, dns::kClassIN});
    for (const dns::Record* r : records) m.answers.push_back(*r);
    auto image = dns::BuildCacheImage(m, policy);
    if (!image.ok() || !image->cacheable) continue;  // e.g. more records than an entry holds
    // Not over an entry stored since the transfer began (a fresher answer
    // to a direct query): checked under the shard's lock.
    if (cache->InsertWithDeadlines(key.view(), *image, now, now + absl::Seconds(image->ttl), now, max_stale, since)) {
      ++stored;
    }
  }
  return stored;
}

Mirror::Mirror(std::vector<MirroredZone> zones, const MirrorOptions& options, const dns::ImagePolicy& image,
               cache::Cache* cache, const SteadyClock* clock, uint64_t seed, MayTransfer may_transfer)
    : zones_(std::move(zones)),
      options_(options),
      image_(image),
      may_transfer_(std::move(may_transfer)),
      cache_(cache),
      clock_(clock),
      rng_(seed) {
  absl::MutexLock lock(&mu_);
  for (const MirroredZone& z : zones_) {
    MirrorStatus st;
    st.zone = z.name;
    status_.push_back(std::move(st));
  }
}

Mirror::~Mirror() { Stop(); }

void Mirror::Start() {
  if (zones_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Mirror::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  cancel_ = true;
  if (thread_.joinable()) thread_.join();
}

void Mirror::Adopt(const std::vector<MirrorStatus>& previous) {
  absl::MutexLock lock(&mu_);
  for (MirrorStatus& s : status_) {
    for (const MirrorStatus& p : previous) {
      if (p.zone == s.zone) s = p;
    }
  }
}

std::vector<MirrorStatus> Mirror::Status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void Mirror::Run() {
  // Each zone's next check; the first within one interval, at random.
  std::uniform_real_distribution<double> first(0.0, 1.0), spread(0.75, 1.25);
  std::vector<absl::Time> next;
  for (size_t i = 0; i < zones_.size(); ++i) next.push_back(clock_->Now() + options_.check_interval * first(rng_));
  for (;;) {
    size_t due = 0;
    for (size_t i = 1; i < next.size(); ++i) {
      if (next[i] < next[due]) due = i;
    }
    {
      absl::MutexLock lock(&mu_);
      // Sleeps until the next check, or Stop().
      mu_.AwaitWithTimeout(absl::Condition(&stop_), std::max(absl::ZeroDuration(), next[due] - clock_->Now()));
      if (stop_) return;
    }
    if (clock_->Now() < next[due]) continue;
    CheckZone(due);
    next[due] = clock_->Now() + options_.check_interval * spread(rng_);
  }
}

void Mirror::CheckZone(size_t i) {
  const MirroredZone& z = zones_[i];
  auto wire = dns::NameFromText(z.name);
  if (!wire.ok()) return;
  std::string zone_wire = dns::Lowercase(*wire);
  absl::Time now = clock_->Now();
  MirrorStatus before;
  {
    absl::MutexLock lock(&mu_);
    ++status_[i].checks;
    status_[i].last_check = now;
    before = status_[i];
  }
  // The first server that answers the SOA query, and its serial.
  absl::Status error = absl::UnavailableError("no server");
  const SocketAddress* from = nullptr;
  uint32_t serial = 0;
  for (const SocketAddress& s : z.servers) {
    auto got = QuerySerial(s, zone_wire, options_.query_timeout, &cancel_);
    if (got.ok()) {
      serial = *got;
      from = &s;
      break;
    }
    error = got.status();
  }
  auto fail = [&](const absl::Status& st) {
    absl::MutexLock lock(&mu_);
    ++status_[i].failures;
    status_[i].last_error = std::string(st.message());
    spdlog::warn("mirror {}: {}", z.name, std::string(st.message()));
  };
  if (from == nullptr) return fail(error);
  if (before.have_serial && serial == before.serial) {
    absl::MutexLock lock(&mu_);
    status_[i].last_error.clear();
    return;  // unchanged: nothing to transfer
  }
  // Changed, but the last attempt (good or failed: a zone over the cap must
  // not be fetched at every check) was too recent.
  if (now - before.last_attempt < options_.min_transfer_interval) return;
  if (cancel_ || (may_transfer_ && !may_transfer_(z.name))) {
    absl::MutexLock lock(&mu_);
    ++status_[i].deferred;
    status_[i].last_error = "transfer deferred: the zone is not healthy";
    return;
  }
  absl::Time started = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    status_[i].last_attempt = started;
  }
  auto zone = Transfer(*from, zone_wire, options_.limits, &cancel_);
  if (!zone.ok()) return fail(absl::Status(zone.status().code(), "transfer from " + from->ToString() + ": " +
                                                                      std::string(zone.status().message())));
  size_t entries = Install(*zone, image_, cache_, clock_->Now(), z.max_stale, started, &cancel_);
  absl::MutexLock lock(&mu_);
  MirrorStatus& s = status_[i];
  s.have_serial = true;
  s.serial = zone->serial;
  s.records = zone->records.size();
  s.entries = entries;
  s.last_transfer = started;
  s.last_error.clear();
  ++s.transfers;
  spdlog::info("mirror {}: serial {} from {}: {} records, {} entries stored, {} bytes", z.name, zone->serial,
               from->ToString(), zone->records.size(), entries, zone->bytes);
}

}  // namespace nodedns::mirror

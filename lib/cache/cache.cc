#include "lib/cache/cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "lib/cache/shard.h"
#include "lib/dns/query_view.h"

namespace nodedns::cache {

using internal::Budget;
using internal::Entry;
using internal::EvictCounts;
using internal::Shard;

namespace {
// Steady-clock milliseconds, clamped far inside int64 so that differences of
// two of them never overflow (an infinite deadline stays "never").
int64_t ToMs(absl::Time t) {
  constexpr int64_t kLimit = int64_t{1} << 61;
  return std::clamp<int64_t>(absl::ToUnixMillis(t), -kLimit, kLimit);
}

// Whole seconds in a non-negative span of milliseconds, saturated: a span
// of more than 136 years (an entry stored with an infinite deadline) must
// not wrap around to a small age (found by the stale-path fuzzer).
uint32_t Seconds(int64_t ms) {
  return static_cast<uint32_t>(std::min<int64_t>(ms / 1000, std::numeric_limits<uint32_t>::max()));
}
}  // namespace

absl::StatusOr<std::unique_ptr<Cache>> Cache::Create(const CacheOptions& options) {
  if (options.shards == 0 || options.shards > 4096) {
    return absl::InvalidArgumentError("cache shards must be between 1 and 4096");
  }
  if (options.max_entries < options.shards) {
    return absl::InvalidArgumentError("cache max_entries must be at least the number of shards");
  }
  if (options.max_bytes < options.shards * 4096) {
    return absl::InvalidArgumentError("cache max_bytes must be at least 4 KiB per shard");
  }
  return std::unique_ptr<Cache>(new Cache(options));
}

Cache::Cache(const CacheOptions& options) : options_(options), budget_(std::make_unique<Budget>()) {
  budget_->max_entries = options.max_entries;
  budget_->max_bytes = options.max_bytes;
  size_t fair_entries = (options.max_entries + options.shards - 1) / options.shards;
  for (size_t i = 0; i < options.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(fair_entries, options.max_bytes / options.shards, budget_.get()));
  }
}

Cache::~Cache() = default;

size_t Cache::ShardIndex(std::string_view key) const {
  return absl::Hash<std::string_view>{}(key) % shards_.size();
}

void Cache::Count(const EvictCounts& c) {
  if (c.evicted + c.stale_serving) {
    counters_.evictions.fetch_add(c.evicted + c.stale_serving, std::memory_order_relaxed);
  }
  if (c.stale_serving) counters_.stale_serving_evicted.fetch_add(c.stale_serving, std::memory_order_relaxed);
  if (c.expired) counters_.expired_removed.fetch_add(c.expired, std::memory_order_relaxed);
}

LookupStatus Cache::Lookup(std::string_view key, absl::Time now, uint8_t* out, size_t cap, HitInfo* info) {
  Shard& s = *shards_[ShardIndex(key)];
  int64_t now_ms = ToMs(now);
  int64_t inserted_ms, expires_ms;
  {
    MutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return LookupStatus::kMiss;
    Entry* e = it->second;
    if (e->Dead(now_ms)) {
      s.RemoveLocked(e);
      counters_.expired_removed.fetch_add(1, std::memory_order_relaxed);
      return LookupStatus::kMiss;
    }
    info->image_len = e->image_len;
    info->kind = e->kind;
    std::memcpy(info->header, e->image(), sizeof(info->header));
    info->copied = e->image_len <= cap;
    if (info->copied) {
      std::memcpy(out, e->image(), e->image_len);
      info->num_ttls = e->num_ttls;
      std::memcpy(info->ttl_offsets, e->ttls(), e->num_ttls * sizeof(uint16_t));
    } else {
      info->num_ttls = 0;
    }
    inserted_ms = e->inserted_ms;
    expires_ms = e->expires_ms;
    info->stale_until = absl::FromUnixMillis(e->stale_until_ms);
    info->refresh_failed_at =
        e->refresh_failed_ms == Entry::kNever ? absl::InfinitePast() : absl::FromUnixMillis(e->refresh_failed_ms);
    // The policy's only bookkeeping on a hit: no list is touched.
    if (e->freq < internal::kMaxFreq) ++e->freq;
    if (now_ms >= expires_ms) e->served_stale = true;
  }
  info->expires_at = absl::FromUnixMillis(expires_ms);
  info->inserted_at = absl::FromUnixMillis(inserted_ms);
  info->age_seconds = now_ms > inserted_ms ? Seconds(now_ms - inserted_ms) : 0;
  if (now_ms < expires_ms) {
    info->stale_seconds = 0;
    return LookupStatus::kFresh;
  }
  info->stale_seconds = Seconds(now_ms - expires_ms);
  return LookupStatus::kStale;
}

bool Cache::Insert(std::string_view key, const dns::CacheImage& image, absl::Time now, absl::Duration max_stale) {
  return InsertWithDeadlines(key, image, now, now + absl::Seconds(image.ttl), now, max_stale);
}

void Cache::MarkRefreshFailed(std::string_view key, absl::Time now) {
  Shard& s = *shards_[ShardIndex(key)];
  MutexLock lock(&s.mu);
  auto it = s.index.find(key);
  if (it != s.index.end()) it->second->refresh_failed_ms = ToMs(now);
}

bool Cache::InsertWithDeadlines(std::string_view key, const dns::CacheImage& image, absl::Time inserted_at,
                                absl::Time expires_at, absl::Time now, absl::Duration max_stale,
                                absl::Time unless_stored_since) {
  if (!image.cacheable || key.empty() || key.size() > 0xFFFF || image.wire.size() > 0xFFFF ||
      image.ttl_offsets.size() > dns::kMaxImageRecords) {
    return false;
  }
  size_t home = ShardIndex(key);
  Shard& s = *shards_[home];
  size_t footprint = Entry::AllocSize(key.size(), image.wire.size(), image.ttl_offsets.size()) +
                     Entry::kIndexOverhead;
  if (footprint > s.fair_bytes) {
    counters_.rejected_too_large.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  absl::Time stale_until = expires_at + max_stale;
  if (now >= stale_until && now >= expires_at) return false;
  Entry* e = Entry::New(key, image);
  e->inserted_ms = ToMs(inserted_at);
  e->expires_ms = ToMs(expires_at);
  e->stale_until_ms = ToMs(stale_until);
  int64_t now_ms = ToMs(now);
  EvictCounts evicted;
  bool borrow = false;
  {
    MutexLock lock(&s.mu);
    Tier tier = Tier::kProbation;
    auto it = s.index.find(key);
    if (unless_stored_since != absl::InfiniteFuture() && it != s.index.end() &&
        it->second->inserted_ms >= ToMs(unless_stored_since)) {
      Entry::Delete(e);
      return false;
    }
    if (s.pinned_keys.contains(absl::string_view(key.data(), key.size()))) {
      tier = Tier::kPinned;
      if (it != s.index.end()) {
        e->freq = it->second->freq;
        s.RemoveLocked(it->second);
      }
    } else if (it != s.index.end()) {
      // A refresh: the name keeps its place and popularity (a stale-serving
      // entry is fresh again, so it returns to the main tier).
      Entry* old = it->second;
      tier = old->tier == Tier::kProbation ? Tier::kProbation : Tier::kMain;
      e->freq = old->freq;
      s.RemoveLocked(old);
    } else {
      size_t window = std::max<size_t>(1, s.index.size() * 9 / 10);
      if (s.ghost.Take(internal::Fingerprint(key), window)) tier = Tier::kMain;
    }
    // Room first, so the new entry is never its own victim. The counts are
    // the cache's: a shard gives room for its own inserts while it has any.
    budget_->entries.fetch_add(1, std::memory_order_relaxed);
    budget_->bytes.fetch_add(footprint, std::memory_order_relaxed);
    while (budget_->Over() && s.EvictOneLocked(now_ms, &evicted)) {
    }
    budget_->entries.fetch_sub(1, std::memory_order_relaxed);
    budget_->bytes.fetch_sub(footprint, std::memory_order_relaxed);
    s.LinkLocked(e, tier);
    borrow = budget_->Over();
  }
  // This shard was empty: room comes from the others, one lock at a time.
  for (size_t k = 1; borrow && k < shards_.size(); ++k) {
    Shard& o = *shards_[(home + k) % shards_.size()];
    MutexLock lock(&o.mu);
    while (budget_->Over() && o.EvictOneLocked(now_ms, &evicted)) {
    }
    borrow = budget_->Over();
  }
  counters_.inserts.fetch_add(1, std::memory_order_relaxed);
  Count(evicted);
  return true;
}

void Cache::SetPinned(const std::vector<std::string>& keys) {
  std::vector<absl::flat_hash_set<std::string>> per_shard(shards_.size());
  for (const std::string& k : keys) per_shard[ShardIndex(k)].insert(k);
  for (size_t i = 0; i < shards_.size(); ++i) {
    MutexLock lock(&shards_[i]->mu);
    shards_[i]->SetPinnedLocked(std::move(per_shard[i]));
  }
}

bool Cache::Peek(std::string_view key, absl::Time* inserted_at, absl::Time* expires_at,
                 absl::Time* stale_until) const {
  const Shard& s = *shards_[ShardIndex(key)];
  MutexLock lock(&s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return false;
  *inserted_at = absl::FromUnixMillis(it->second->inserted_ms);
  *expires_at = absl::FromUnixMillis(it->second->expires_ms);
  *stale_until = absl::FromUnixMillis(it->second->stale_until_ms);
  return true;
}

bool Cache::Erase(std::string_view key) {
  Shard& s = *shards_[ShardIndex(key)];
  MutexLock lock(&s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return false;
  s.RemoveLocked(it->second);
  return true;
}

void Cache::Clear() {
  for (auto& s : shards_) {
    MutexLock lock(&s->mu);
    s->RemoveIfLocked([](const Entry*) { return true; });
    s->ghost.Clear();
  }
}

// The cache-wide counts the limits are enforced on: one consistent number
// (summing the shards one lock at a time could count an entry inserted into
// a later shard and not the eviction it caused in an earlier one), and no lock.
// Under concurrent inserts each inserter adds at most one transiently.
size_t Cache::entries() const { return budget_->entries.load(std::memory_order_relaxed); }

size_t Cache::bytes() const { return budget_->bytes.load(std::memory_order_relaxed); }

std::vector<EntrySummary> Cache::Summaries() const {
  std::vector<EntrySummary> out;
  ForEach([&](const EntryView& e) {
    out.push_back(EntrySummary{std::string(e.key), e.kind, e.inserted_at, e.expires_at, e.stale_until, e.image.size(),
                               e.tier});
  });
  return out;
}

void Cache::ForEach(absl::FunctionRef<void(const EntryView&)> fn) const {
  for (const auto& s : shards_) {
    MutexLock lock(&s->mu);
    s->ForEachLocked([&](Entry* e) {
      fn(EntryView{e->key(), e->kind, absl::FromUnixMillis(e->inserted_ms), absl::FromUnixMillis(e->expires_ms),
                   absl::FromUnixMillis(e->stale_until_ms), {e->ttls(), e->num_ttls}, {e->image(), e->image_len},
                   e->tier});
    });
  }
}

size_t Cache::EraseName(std::string_view qname) {
  size_t n = 0;
  for (auto& s : shards_) {
    MutexLock lock(&s->mu);
    n += s->RemoveIfLocked([&](Entry* e) { return dns::CacheKeyQname(e->key()) == qname; });
  }
  return n;
}

void Cache::AppendMetrics(MetricSet* out) const {
  out->AddCounters("", "cache_", counters_);
  out->Gauge("cache", "entries", "Entries in the cache (fresh and stale)", static_cast<double>(entries()));
  out->Gauge("cache", "bytes", "Bytes the cache's entries take", static_cast<double>(bytes()));
  out->Gauge("cache", "max_entries", "Configured cache.max_entries", static_cast<double>(options_.max_entries));
  out->Gauge("cache", "max_bytes", "Configured cache.max_bytes", static_cast<double>(options_.max_bytes));
}

}  // namespace nodedns::cache

#include "lib/cache/cache.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "lib/dns/query_view.h"

namespace nodedns::cache {

// One heap block per entry: this header, then the TTL offsets (uint16_t),
// the key and the image. Deadlines are absolute, as in Unbound: milliseconds
// on the steady clock (the snapshot converts them to and from wall time).
struct Cache::Entry {
  static constexpr int64_t kNever = INT64_MIN;
  Entry* prev = nullptr;  // LRU: head is most recently used
  Entry* next = nullptr;
  int64_t inserted_ms = 0;
  int64_t expires_ms = 0;
  int64_t stale_until_ms = 0;
  int64_t refresh_failed_ms = kNever;
  uint16_t key_len = 0;
  uint16_t image_len = 0;
  uint16_t num_ttls = 0;
  dns::AnswerKind kind = dns::AnswerKind::kOther;

  uint16_t* ttls() { return reinterpret_cast<uint16_t*>(this + 1); }
  char* key_data() { return reinterpret_cast<char*>(ttls() + num_ttls); }
  uint8_t* image() { return reinterpret_cast<uint8_t*>(key_data() + key_len); }
  std::string_view key() { return {key_data(), key_len}; }
  size_t footprint() const { return AllocSize(key_len, image_len, num_ttls) + kIndexOverhead; }

  // Approximate per-entry cost of the hash index slot and control bytes.
  static constexpr size_t kIndexOverhead = 32;
  static size_t AllocSize(size_t key_len, size_t image_len, size_t num_ttls) {
    return sizeof(Entry) + num_ttls * sizeof(uint16_t) + key_len + image_len;
  }
  static Entry* New(std::string_view key, const dns::CacheImage& image) {
    void* mem = ::operator new(AllocSize(key.size(), image.wire.size(), image.ttl_offsets.size()));
    Entry* e = new (mem) Entry();
    e->key_len = static_cast<uint16_t>(key.size());
    e->image_len = static_cast<uint16_t>(image.wire.size());
    e->num_ttls = static_cast<uint16_t>(image.ttl_offsets.size());
    e->kind = image.kind;
    if (!image.ttl_offsets.empty()) {  // an empty vector's data() may be null
      std::memcpy(e->ttls(), image.ttl_offsets.data(), image.ttl_offsets.size() * sizeof(uint16_t));
    }
    std::memcpy(e->key_data(), key.data(), key.size());
    std::memcpy(e->image(), image.wire.data(), image.wire.size());
    return e;
  }
  static void Delete(Entry* e) {
    e->~Entry();
    ::operator delete(e);
  }
};

struct Cache::Shard {
  mutable absl::Mutex mu;
  absl::flat_hash_map<std::string_view, Entry*> index ABSL_GUARDED_BY(mu);
  Entry* head ABSL_GUARDED_BY(mu) = nullptr;
  Entry* tail ABSL_GUARDED_BY(mu) = nullptr;
  size_t bytes ABSL_GUARDED_BY(mu) = 0;
  size_t max_entries = 0;
  size_t max_bytes = 0;

  void UnlinkLocked(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    (e->prev ? e->prev->next : head) = e->next;
    (e->next ? e->next->prev : tail) = e->prev;
    e->prev = e->next = nullptr;
  }
  void PushFrontLocked(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    e->prev = nullptr;
    e->next = head;
    if (head) head->prev = e;
    head = e;
    if (!tail) tail = e;
  }
  void RemoveLocked(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    index.erase(e->key());
    UnlinkLocked(e);
    bytes -= e->footprint();
    Entry::Delete(e);
  }
  ~Shard() {
    absl::MutexLock lock(&mu);
    for (Entry* e = head; e;) {
      Entry* next = e->next;
      Entry::Delete(e);
      e = next;
    }
  }
};

namespace {
// Steady-clock milliseconds, clamped far inside int64 so that differences of
// two of them never overflow (an infinite deadline stays "never").
int64_t ToMs(absl::Time t) {
  constexpr int64_t kLimit = int64_t{1} << 61;
  return std::clamp<int64_t>(absl::ToUnixMillis(t), -kLimit, kLimit);
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

Cache::Cache(const CacheOptions& options) : options_(options) {
  for (size_t i = 0; i < options.shards; ++i) {
    auto s = std::make_unique<Shard>();
    s->max_entries = options.max_entries / options.shards;
    s->max_bytes = options.max_bytes / options.shards;
    shards_.push_back(std::move(s));
  }
}

Cache::~Cache() = default;

Cache::Shard& Cache::ShardFor(std::string_view key) {
  return *shards_[absl::Hash<std::string_view>{}(key) % shards_.size()];
}

LookupStatus Cache::Lookup(std::string_view key, absl::Time now, uint8_t* out, size_t cap, HitInfo* info) {
  Shard& s = ShardFor(key);
  int64_t now_ms = ToMs(now);
  int64_t inserted_ms, expires_ms;
  {
    absl::MutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return LookupStatus::kMiss;
    Entry* e = it->second;
    if (now_ms >= e->stale_until_ms && now_ms >= e->expires_ms) {
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
    if (s.head != e) {
      s.UnlinkLocked(e);
      s.PushFrontLocked(e);
    }
  }
  info->expires_at = absl::FromUnixMillis(expires_ms);
  info->inserted_at = absl::FromUnixMillis(inserted_ms);
  info->age_seconds = now_ms > inserted_ms ? static_cast<uint32_t>((now_ms - inserted_ms) / 1000) : 0;
  if (now_ms < expires_ms) {
    info->stale_seconds = 0;
    return LookupStatus::kFresh;
  }
  info->stale_seconds = static_cast<uint32_t>((now_ms - expires_ms) / 1000);
  return LookupStatus::kStale;
}

bool Cache::Insert(std::string_view key, const dns::CacheImage& image, absl::Time now, absl::Duration max_stale) {
  return InsertWithDeadlines(key, image, now, now + absl::Seconds(image.ttl), now, max_stale);
}

void Cache::MarkRefreshFailed(std::string_view key, absl::Time now) {
  Shard& s = ShardFor(key);
  absl::MutexLock lock(&s.mu);
  auto it = s.index.find(key);
  if (it != s.index.end()) it->second->refresh_failed_ms = ToMs(now);
}

bool Cache::InsertWithDeadlines(std::string_view key, const dns::CacheImage& image, absl::Time inserted_at,
                                absl::Time expires_at, absl::Time now, absl::Duration max_stale) {
  if (!image.cacheable || key.empty() || key.size() > 0xFFFF || image.wire.size() > 0xFFFF ||
      image.ttl_offsets.size() > dns::kMaxImageRecords) {
    return false;
  }
  Shard& s = ShardFor(key);
  size_t footprint = Entry::AllocSize(key.size(), image.wire.size(), image.ttl_offsets.size()) +
                     Entry::kIndexOverhead;
  if (footprint > s.max_bytes) {
    counters_.rejected_too_large.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  absl::Time stale_until = expires_at + max_stale;
  if (now >= stale_until && now >= expires_at) return false;
  Entry* e = Entry::New(key, image);
  e->inserted_ms = ToMs(inserted_at);
  e->expires_ms = ToMs(expires_at);
  e->stale_until_ms = ToMs(stale_until);
  uint64_t evicted = 0;
  {
    absl::MutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it != s.index.end()) s.RemoveLocked(it->second);
    s.index.emplace(e->key(), e);
    s.PushFrontLocked(e);
    s.bytes += footprint;
    while ((s.index.size() > s.max_entries || s.bytes > s.max_bytes) && s.tail != e) {
      s.RemoveLocked(s.tail);
      ++evicted;
    }
  }
  counters_.inserts.fetch_add(1, std::memory_order_relaxed);
  if (evicted) counters_.evictions.fetch_add(evicted, std::memory_order_relaxed);
  return true;
}

bool Cache::Erase(std::string_view key) {
  Shard& s = ShardFor(key);
  absl::MutexLock lock(&s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return false;
  s.RemoveLocked(it->second);
  return true;
}

void Cache::Clear() {
  for (auto& s : shards_) {
    absl::MutexLock lock(&s->mu);
    while (s->head) s->RemoveLocked(s->head);
  }
}

size_t Cache::entries() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    absl::MutexLock lock(&s->mu);
    n += s->index.size();
  }
  return n;
}

size_t Cache::bytes() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    absl::MutexLock lock(&s->mu);
    n += s->bytes;
  }
  return n;
}

std::vector<EntrySummary> Cache::Summaries() const {
  std::vector<EntrySummary> out;
  ForEach([&](const EntryView& e) {
    out.push_back(EntrySummary{std::string(e.key), e.kind, e.inserted_at, e.expires_at, e.stale_until, e.image.size()});
  });
  return out;
}

void Cache::ForEach(absl::FunctionRef<void(const EntryView&)> fn) const {
  for (const auto& s : shards_) {
    absl::MutexLock lock(&s->mu);
    for (Entry* e = s->head; e; e = e->next) {
      fn(EntryView{e->key(), e->kind, absl::FromUnixMillis(e->inserted_ms), absl::FromUnixMillis(e->expires_ms),
                   absl::FromUnixMillis(e->stale_until_ms), {e->ttls(), e->num_ttls}, {e->image(), e->image_len}});
    }
  }
}

size_t Cache::EraseName(std::string_view qname) {
  size_t n = 0;
  for (auto& s : shards_) {
    absl::MutexLock lock(&s->mu);
    for (Entry* e = s->head; e;) {
      Entry* next = e->next;
      if (dns::CacheKeyQname(e->key()) == qname) {
        s->RemoveLocked(e);
        ++n;
      }
      e = next;
    }
  }
  return n;
}

}  // namespace nodedns::cache

#ifndef NODEDNS_LIB_CACHE_CACHE_H_
#define NODEDNS_LIB_CACHE_CACHE_H_

// The answer cache: wire images keyed by CacheKey (lowercased qname, qtype,
// qclass, DO, CD), sharded, each shard with its own mutex.
//
// Capacity: max_entries and max_bytes hold for the cache as a whole. Counts
// are cache-wide; an insert that takes the cache over a limit evicts from its
// own shard (from another one only if its own is empty), so shards borrow
// room from each other as hashing fills them unevenly. At rest the cache never
// exceeds a limit; concurrent inserts into different shards may each evict
// one entry more than needed (it runs at most that many entries short).
//
// Eviction: S3-FIFO (Yang et al., SOSP 2023) in each shard. A new entry
// starts in probation (a FIFO); asked for again before it reaches the tail,
// it moves to the main tier (a FIFO with a 2-bit access count, CLOCK),
// otherwise it is evicted and its fingerprint remembered in a ghost FIFO (as
// many as 90 % of the shard's entries); a name stored again while remembered
// goes straight to the main tier. A hit only raises a counter: no list is
// touched on the hit path. Order of precedence, first evicted first:
//   1. entries past their stale window (dead), wherever a tail shows one;
//   2. probation entries not asked for again since stored (one-hit entries);
//   3. main-tier entries whose access count has run down to zero;
//   4. stale-serving entries: expired, answered stale since, and not
//      refreshed (the zone is failing or down). Only when nothing else is
//      left in the shard, longest-kept first.
// Pinned entries (SetPinned: the keys of the zones' `pin` names) are never
// evicted to make room; they leave only when past their stale window, by a
// flush, or when unpinned (they then join the main tier).
// Within 2 and 3 the tail asked for less often goes first, and on a tie the
// negative answer (NXDOMAIN, NODATA, SERVFAIL) before the positive one: a
// negative answer never pushes out a positive one as popular as itself.
// Replacing an entry (a refresh) keeps its tier and access count.
//
// Threading: every method is thread-safe. A lookup holds one shard's lock for
// a hash probe, a memcpy of the image and a counter update; nothing else runs
// under a lock, and a lookup allocates nothing.
// Ownership: the cache owns its entries; Lookup copies bytes out, so nothing
// the caller holds points into the cache.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "absl/status/statusor.h"
#include "lib/common/mutex.h"
#include "absl/time/time.h"
#include "lib/common/counters.h"
#include "lib/common/metrics.h"
#include "lib/dns/cache_image.h"

// Exported as cache_<name> (`dnsctl stats` counters, nodedns_cache_<name>_total).
#define NODEDNS_CACHE_COUNTERS(X)                                                                    \
  X(inserts, "Entries stored in the cache: answers, and entries loaded from the snapshot")          \
  X(evictions, "Entries evicted by the cache policy to stay within the cache limits")               \
  X(expired_removed, "Entries removed past their stale limit")                                      \
  X(stale_serving_evicted, "Evictions of entries still servable as stale: nothing else was left")   \
  X(rejected_too_large, "Answers not stored: one entry would exceed its shard's share of the byte limit")

namespace nodedns::cache {
namespace internal {
struct Budget;
struct EvictCounts;
struct Shard;
}  // namespace internal

struct CacheOptions {
  size_t max_entries = 100'000;
  size_t max_bytes = 64ull << 20;
  size_t shards = 16;
  friend bool operator==(const CacheOptions&, const CacheOptions&) = default;
};

enum class LookupStatus : uint8_t { kMiss, kFresh, kStale };

// Where an entry is in the eviction order (see the top of this file).
enum class Tier : uint8_t { kProbation, kMain, kStaleServing, kPinned };

// What a hit returns besides the image bytes. Lives in the caller's scratch
// space (it is about 1 KiB), so a lookup allocates nothing.
struct HitInfo {
  uint16_t image_len = 0;
  bool copied = false;          // false when the image did not fit in `cap`
  uint8_t header[12] = {};      // the image's header, always copied
  uint16_t num_ttls = 0;
  uint16_t ttl_offsets[dns::kMaxImageRecords];
  dns::AnswerKind kind = dns::AnswerKind::kOther;
  uint32_t age_seconds = 0;        // since the answer was stored
  uint32_t stale_seconds = 0;      // since it expired (kStale only)
  absl::Time inserted_at;
  absl::Time expires_at;
  absl::Time stale_until;
  absl::Time refresh_failed_at;    // last failed refresh, InfinitePast if none
};

// A read-only description of an entry, for dump/snapshot/tests.
struct EntrySummary {
  std::string key;
  dns::AnswerKind kind;
  absl::Time inserted_at, expires_at, stale_until;
  size_t image_len;
  Tier tier = Tier::kProbation;
};

// An entry as ForEach shows it: views into the cache, valid during the call.
struct EntryView {
  std::string_view key;
  dns::AnswerKind kind;
  absl::Time inserted_at, expires_at, stale_until;
  absl::Span<const uint16_t> ttl_offsets;
  absl::Span<const uint8_t> image;
  Tier tier = Tier::kProbation;
};

class Cache {
 public:
  static absl::StatusOr<std::unique_ptr<Cache>> Create(const CacheOptions& options);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Copies the entry's image into out[0, cap) when it fits. Counts the
  // access for the eviction policy; a kStale answer marks the entry
  // stale-serving until it is replaced.
  LookupStatus Lookup(std::string_view key, absl::Time now, uint8_t* out, size_t cap, HitInfo* info);

  // Stores (or replaces) the answer for `key`, fresh until now + image.ttl
  // and kept max_stale longer (RFC 8767: it may be served stale until then).
  // Images that are not cacheable, or larger than max_bytes / shards, are
  // ignored. Returns true if stored. May evict (see the top of this file).
  bool Insert(std::string_view key, const dns::CacheImage& image, absl::Time now,
              absl::Duration max_stale = absl::ZeroDuration());
  // Stores an entry with explicit deadlines (snapshot load). An entry
  // already there and stored at or after `unless_stored_since` is kept
  // instead (checked under the shard's lock: the zone mirror never
  // overwrites a fresher answer).
  bool InsertWithDeadlines(std::string_view key, const dns::CacheImage& image, absl::Time inserted_at,
                           absl::Time expires_at, absl::Time now, absl::Duration max_stale,
                           absl::Time unless_stored_since = absl::InfiniteFuture());
  // Records that a refresh of `key` sent at `sent_at` failed (RFC 8767 failure
  // recheck; the window counts from the send, see the resolver).
  void MarkRefreshFailed(std::string_view key, absl::Time sent_at);

  // The keys whose entries are pinned (replacing the previous set): entries
  // present move to or from the pinned tier, and later inserts of these keys
  // are pinned. Pinned entries count toward the limits (keep the set small:
  // the config allows 1,000 names).
  void SetPinned(const std::vector<std::string>& keys);
  // The deadlines of `key`'s entry without counting an access (the pin
  // refresher looks without making the entry look popular). False if none.
  bool Peek(std::string_view key, absl::Time* inserted_at, absl::Time* expires_at, absl::Time* stale_until) const;

  bool Erase(std::string_view key);
  // Removes every entry for `qname` (lowercased uncompressed wire name), all
  // types and flags. Returns how many.
  size_t EraseName(std::string_view qname);
  void Clear();

  size_t entries() const;
  size_t bytes() const;
  std::vector<EntrySummary> Summaries() const;
  // Calls fn for every entry, one shard at a time under that shard's lock
  // (lookups of that shard wait): fn must be quick and must not use the cache.
  void ForEach(absl::FunctionRef<void(const EntryView&)> fn) const;

  // Written under the shard locks by any thread (relaxed atomics).
  struct Counters {
    NODEDNS_COUNTER_MEMBERS(NODEDNS_CACHE_COUNTERS)
  };
  const Counters& counters() const { return counters_; }
  // The cache's counters (as cache_<name>) and its size gauges (group
  // "cache"), for the exported set.
  void AppendMetrics(MetricSet* out) const;
  const CacheOptions& options() const { return options_; }

 private:
  explicit Cache(const CacheOptions& options);
  size_t ShardIndex(std::string_view key) const;
  void Count(const internal::EvictCounts& c);

  const CacheOptions options_;
  std::unique_ptr<internal::Budget> budget_;
  std::vector<std::unique_ptr<internal::Shard>> shards_;
  Counters counters_;
};

}  // namespace nodedns::cache

#endif  // NODEDNS_LIB_CACHE_CACHE_H_

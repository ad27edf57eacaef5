#ifndef NODEDNS_LIB_CACHE_SHARD_H_
#define NODEDNS_LIB_CACHE_SHARD_H_

// Internal to lib/cache: one shard of the cache, its entries, and the
// eviction policy (S3-FIFO with the precedence rules of cache.h).
//
// Threading: a Shard is used only under its own mutex; every method that
// touches entries is ...Locked and says so. The cache-wide counts live in
// the Cache (atomics) and are passed in as a Budget.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "lib/common/mutex.h"
#include "lib/cache/cache.h"
#include "lib/dns/cache_image.h"

namespace nodedns::cache::internal {

// Which of the two lists of a tier an entry is on: at equal access counts
// the negative side is evicted first (cache.h, precedence).
enum Side : uint8_t { kPositiveSide = 0, kNegativeSide = 1 };

inline Side SideOf(dns::AnswerKind kind) {
  return kind == dns::AnswerKind::kPositive || kind == dns::AnswerKind::kOther ? kPositiveSide : kNegativeSide;
}

// Accesses counted per entry (two bits, as in S3-FIFO's main queue CLOCK).
inline constexpr uint8_t kMaxFreq = 3;
// A probationary entry asked for at least this often since it was stored
// moves to the main tier; otherwise it is evicted (and remembered in the
// ghost). Chosen on the trace replays of bench/hit_ratio_sim (README).
inline constexpr uint8_t kPromoteAfter = 1;

// One heap block per entry: this header, then the TTL offsets (uint16_t),
// the key and the image. Deadlines are absolute, as in Unbound: milliseconds
// on the steady clock (the snapshot converts them to and from wall time).
struct Entry {
  static constexpr int64_t kNever = INT64_MIN;
  Entry* prev = nullptr;  // toward the head (newest) of its list
  Entry* next = nullptr;  // toward the tail (next eviction candidate)
  int64_t inserted_ms = 0;
  int64_t expires_ms = 0;
  int64_t stale_until_ms = 0;
  int64_t refresh_failed_ms = kNever;
  uint16_t key_len = 0;
  uint16_t image_len = 0;
  uint16_t num_ttls = 0;
  dns::AnswerKind kind = dns::AnswerKind::kOther;
  Tier tier = Tier::kProbation;
  uint8_t freq = 0;            // accesses since stored or last passed over, capped at kMaxFreq
  bool served_stale = false;   // a lookup answered it stale since it was stored

  uint16_t* ttls() { return reinterpret_cast<uint16_t*>(this + 1); }
  char* key_data() { return reinterpret_cast<char*>(ttls() + num_ttls); }
  uint8_t* image() { return reinterpret_cast<uint8_t*>(key_data() + key_len); }
  std::string_view key() { return {key_data(), key_len}; }
  size_t footprint() const { return AllocSize(key_len, image_len, num_ttls) + kIndexOverhead; }
  Side side() const { return SideOf(kind); }
  bool Dead(int64_t now_ms) const { return now_ms >= stale_until_ms && now_ms >= expires_ms; }
  // Being served stale right now: expired, within its stale window, asked
  // for since it expired and not refreshed (a refresh stores a new entry).
  bool StaleServing(int64_t now_ms) const {
    return served_stale && now_ms >= expires_ms && now_ms < stale_until_ms;
  }

  // Approximate per-entry cost of the hash index slot and control bytes.
  static constexpr size_t kIndexOverhead = 32;
  static size_t AllocSize(size_t key_len, size_t image_len, size_t num_ttls) {
    return sizeof(Entry) + num_ttls * sizeof(uint16_t) + key_len + image_len;
  }
  static Entry* New(std::string_view key, const dns::CacheImage& image);
  static void Delete(Entry* e);
};

// An intrusive FIFO: PushHead adds the newest, the tail is the oldest.
struct EntryList {
  Entry* head = nullptr;
  Entry* tail = nullptr;
  size_t size = 0;
  void PushHead(Entry* e);
  void Unlink(Entry* e);
};

// Fingerprints of entries recently evicted from probation (S3-FIFO's ghost
// queue): a FIFO ring and a map from fingerprint to its newest position.
// A name asked for again while remembered goes straight to the main tier.
// Memory grows with use, up to `capacity` fingerprints.
class Ghost {
 public:
  explicit Ghost(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  void Add(uint32_t fingerprint);
  // True (and forgotten) if `fingerprint` is among the newest `window` added.
  bool Take(uint32_t fingerprint, size_t window);
  void Clear();
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  std::vector<uint32_t> ring_;
  // Fingerprint -> its newest position, modulo 2^32 (an entry leaves the map
  // when its ring slot is reused, long before positions wrap).
  absl::flat_hash_map<uint32_t, uint32_t> newest_;
  uint64_t added_ = 0;
};

// Cache-wide counts and limits, shared by the shards (owned by the Cache).
struct Budget {
  std::atomic<size_t> entries{0};
  std::atomic<size_t> bytes{0};
  size_t max_entries = 0;
  size_t max_bytes = 0;
  bool Over() const {
    return entries.load(std::memory_order_relaxed) > max_entries || bytes.load(std::memory_order_relaxed) > max_bytes;
  }
};

struct EvictCounts {
  uint64_t evicted = 0;          // by the policy
  uint64_t expired = 0;          // past stale_until, found at a tail
  uint64_t stale_serving = 0;    // stale-serving entries evicted (nothing else was left)
};

struct Shard {
  Shard(size_t fair_share_entries, size_t fair_share_bytes, Budget* cache_budget);
  ~Shard();

  mutable Mutex mu;
  absl::flat_hash_map<std::string_view, Entry*> index ABSL_GUARDED_BY(mu);
  EntryList probation[2] ABSL_GUARDED_BY(mu);  // by Side
  EntryList main[2] ABSL_GUARDED_BY(mu);       // by Side
  EntryList kept ABSL_GUARDED_BY(mu);          // stale-serving, evicted last
  EntryList pinned ABSL_GUARDED_BY(mu);        // never evicted (only removed dead)
  absl::flat_hash_set<std::string> pinned_keys ABSL_GUARDED_BY(mu);  // this shard's share of Cache::SetPinned
  Ghost ghost ABSL_GUARDED_BY(mu);
  const size_t fair_entries;  // max_entries / shards, rounded up
  const size_t fair_bytes;    // max_bytes / shards: the largest entry accepted
  Budget* const budget;

  // Links a new entry (its key not in the index) into `tier`, and counts it.
  void LinkLocked(Entry* e, Tier tier) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Unlinks, uncounts and deletes.
  void RemoveLocked(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Frees one entry's room by the precedence rules. False if the shard is empty.
  bool EvictOneLocked(int64_t now_ms, EvictCounts* counts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Replaces pinned_keys; moves the entries present to or from the pinned tier.
  void SetPinnedLocked(absl::flat_hash_set<std::string> keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Calls fn for every entry: pinned, stale-serving, main, then probation.
  template <typename Fn>
  void ForEachLocked(Fn fn) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const EntryList* l : {&pinned, &kept, &main[0], &main[1], &probation[0], &probation[1]}) {
      for (Entry* e = l->head; e;) {
        Entry* next = e->next;  // fn may remove e
        fn(e);
        e = next;
      }
    }
  }
  // Removes (RemoveLocked) every entry `pred` selects; returns how many.
  template <typename Pred>
  size_t RemoveIfLocked(Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    size_t n = 0;
    for (EntryList* l : {&pinned, &kept, &main[0], &main[1], &probation[0], &probation[1]}) {
      for (Entry* e = l->head; e;) {
        Entry* next = e->next;
        if (pred(e)) {
          RemoveLocked(e);
          ++n;
        }
        e = next;
      }
    }
    return n;
  }

 private:
  EntryList& ListOf(const Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void MoveLocked(Entry* e, Tier tier) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

// The fingerprint the ghost remembers for a key.
uint32_t Fingerprint(std::string_view key);

}  // namespace nodedns::cache::internal

#endif  // NODEDNS_LIB_CACHE_SHARD_H_

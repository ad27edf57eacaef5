#include "lib/cache/shard.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/hash/hash.h"

namespace nodedns::cache::internal {

Entry* Entry::New(std::string_view key, const dns::CacheImage& image) {
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

void Entry::Delete(Entry* e) {
  e->~Entry();
  ::operator delete(e);
}

void EntryList::PushHead(Entry* e) {
  e->prev = nullptr;
  e->next = head;
  if (head) head->prev = e;
  head = e;
  if (!tail) tail = e;
  ++size;
}

void EntryList::Unlink(Entry* e) {
  (e->prev ? e->prev->next : head) = e->next;
  (e->next ? e->next->prev : tail) = e->prev;
  e->prev = e->next = nullptr;
  --size;
}

void Ghost::Add(uint32_t fingerprint) {
  if (added_ < capacity_) {
    ring_.push_back(fingerprint);
  } else {
    // The slot's previous fingerprint leaves the window, unless it was added
    // again since (then its newest position is later) or taken.
    uint32_t& slot = ring_[added_ % capacity_];
    auto it = newest_.find(slot);
    if (it != newest_.end() && it->second == static_cast<uint32_t>(added_ - capacity_)) newest_.erase(it);
    slot = fingerprint;
  }
  newest_[fingerprint] = static_cast<uint32_t>(added_);
  ++added_;
}

bool Ghost::Take(uint32_t fingerprint, size_t window) {
  auto it = newest_.find(fingerprint);
  if (it == newest_.end()) return false;
  bool recent = static_cast<uint32_t>(static_cast<uint32_t>(added_) - it->second) <= window;
  newest_.erase(it);
  return recent;
}

void Ghost::Clear() {
  ring_.clear();
  newest_.clear();
  added_ = 0;
}

uint32_t Fingerprint(std::string_view key) {
  // The high half: the low bits also chose the shard, so they are alike
  // within one.
  return static_cast<uint32_t>(absl::Hash<std::string_view>{}(key) >> 32);
}

Shard::Shard(size_t fair_share_entries, size_t fair_share_bytes, Budget* cache_budget)
    // The ghost remembers at most a shard's share of entries, and no more
    // than its bytes could hold (a huge max_entries with a small max_bytes).
    : ghost(std::min(fair_share_entries, fair_share_bytes / 128)),
      fair_entries(fair_share_entries),
      fair_bytes(fair_share_bytes),
      budget(cache_budget) {}

Shard::~Shard() {
  MutexLock lock(&mu);
  ForEachLocked([](Entry* e) { Entry::Delete(e); });
}

EntryList& Shard::ListOf(const Entry* e) {
  switch (e->tier) {
    case Tier::kProbation:
      return probation[e->side()];
    case Tier::kMain:
      return main[e->side()];
    case Tier::kPinned:
      return pinned;
    case Tier::kStaleServing:
      break;
  }
  return kept;
}

void Shard::SetPinnedLocked(absl::flat_hash_set<std::string> keys) {
  pinned_keys = std::move(keys);
  // Unpinned: evictable again, as a name that was asked for (main tier).
  for (Entry* e = pinned.head; e;) {
    Entry* next = e->next;
    if (!pinned_keys.contains(absl::string_view(e->key().data(), e->key().size()))) MoveLocked(e, Tier::kMain);
    e = next;
  }
  for (const std::string& k : pinned_keys) {
    auto it = index.find(k);
    if (it != index.end() && it->second->tier != Tier::kPinned) MoveLocked(it->second, Tier::kPinned);
  }
}

void Shard::LinkLocked(Entry* e, Tier tier) {
  e->tier = tier;
  ListOf(e).PushHead(e);
  index.emplace(e->key(), e);
  size_t fp = e->footprint();
  budget->entries.fetch_add(1, std::memory_order_relaxed);
  budget->bytes.fetch_add(fp, std::memory_order_relaxed);
}

void Shard::RemoveLocked(Entry* e) {
  index.erase(e->key());
  ListOf(e).Unlink(e);
  size_t fp = e->footprint();
  budget->entries.fetch_sub(1, std::memory_order_relaxed);
  budget->bytes.fetch_sub(fp, std::memory_order_relaxed);
  Entry::Delete(e);
}

void Shard::MoveLocked(Entry* e, Tier tier) {
  ListOf(e).Unlink(e);
  e->tier = tier;
  ListOf(e).PushHead(e);
}

namespace {
// The tail a tier handles next: the one asked for less often; on a tie, the
// negative side's (a negative answer never displaces a positive one that is
// asked for as often).
EntryList* PickTail(EntryList* lists) {
  EntryList* pos = &lists[kPositiveSide];
  EntryList* neg = &lists[kNegativeSide];
  if (!pos->tail) return neg->tail ? neg : nullptr;
  if (!neg->tail) return pos;
  return neg->tail->freq <= pos->tail->freq ? neg : pos;
}
}  // namespace

bool Shard::EvictOneLocked(int64_t now_ms, EvictCounts* counts) {
  // 1. Entries past their stale window go first, wherever a tail shows one
  // (pinned ones included: they can no longer be served). Pinned entries
  // are not touched otherwise.
  for (EntryList* l : {&kept, &probation[kNegativeSide], &probation[kPositiveSide], &main[kNegativeSide],
                       &main[kPositiveSide], &pinned}) {
    if (l->tail && l->tail->Dead(now_ms)) {
      RemoveLocked(l->tail);
      ++counts->expired;
      return true;
    }
  }
  // Every pass below evicts, or moves an entry out of probation (once per
  // entry), or into the kept list (once), or lowers a count (at most
  // kMaxFreq times per entry): the loop ends within (kMaxFreq + 2) passes per
  // entry. More would be a bug in this function.
  const size_t limit = (kMaxFreq + 2) * index.size() + 1;
  for (size_t pass = 0; pass < limit; ++pass) {
    size_t s = probation[0].size + probation[1].size;
    size_t m = main[0].size + main[1].size;
    if (s + m == 0) {
      // 4. Only stale-serving entries are left: the longest kept goes.
      if (!kept.tail) return false;
      RemoveLocked(kept.tail);
      ++counts->stale_serving;
      return true;
    }
    // S3-FIFO: the main tier gives up entries when it holds more than 90 %
    // (or probation is empty); otherwise probation does.
    bool from_main = m > 0 && (s == 0 || m * 10 > (s + m) * 9);
    EntryList* l = PickTail(from_main ? main : probation);
    Entry* t = l->tail;
    if (t->Dead(now_ms)) {
      RemoveLocked(t);
      ++counts->expired;
      return true;
    }
    if (t->StaleServing(now_ms)) {
      MoveLocked(t, Tier::kStaleServing);
      continue;
    }
    if (from_main) {
      // 3. CLOCK over the main tier: asked for since the last pass, it goes
      // round again with one access fewer.
      if (t->freq > 0) {
        --t->freq;
        l->Unlink(t);
        l->PushHead(t);
        continue;
      }
    } else if (t->freq >= kPromoteAfter) {
      // 2. Probation: asked for again, it moves to the main tier ...
      t->freq = 0;
      MoveLocked(t, Tier::kMain);
      continue;
    } else {
      // ... a one-hit entry leaves, and is remembered in the ghost.
      ghost.Add(Fingerprint(t->key()));
    }
    RemoveLocked(t);
    ++counts->evicted;
    return true;
  }
  std::fprintf(stderr, "nodedns: cache eviction did not end (%zu entries)\n", index.size());
  std::abort();
}

}  // namespace nodedns::cache::internal

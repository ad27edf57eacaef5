#ifndef NODEDNS_LIB_UPSTREAM_FAIR_QUEUE_H_
#define NODEDNS_LIB_UPSTREAM_FAIR_QUEUE_H_

// The client misses of a zone waiting for room under the concurrency limit,
// one FIFO per flow (a client: its source address, or IPv6 prefix), served
// round robin: each flow with something queued gets one start per round, as
// deficit round robin (Shreedhar & Varghese) does with every query costing
// one. A client that floods unique names fills its own FIFO, not everyone's
// wait: another client's miss goes out after at most one start per other
// waiting flow, not after the flood's backlog.
//
// When the queue is full, the pool pushes out the newest entry of the longest
// flow to make room for a flow that holds fewer (longest-queue drop, as
// FQ-CoDel drops from the fattest flow), so the flood cannot keep a quiet
// client out by keeping the queue full.
//
// Memory: one node per entry and a map entry per flow with entries (a flow
// is forgotten when its FIFO empties), so both are bounded by the pool's
// max_queue; the round-robin ring is compacted when stale ids pile up.
//
// Deadlines are kept per entry; entries are expected in deadline order per
// flow and overall (each gets now + the queue timeout when pushed), so the
// oldest entry overall is the front of its flow's FIFO.
//
// Threading: not thread-safe (one loop thread, like the pool).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace nodedns::upstream {

template <typename T>
class FairQueue {
 public:
  size_t size() const { return order_.size(); }
  bool empty() const { return order_.empty(); }
  size_t flows() const { return flows_.size(); }
  size_t ring_slots() const { return ring_.size(); }  // live and stale; for tests
  size_t flow_size(uint64_t flow) const {
    auto it = flows_.find(flow);
    return it == flows_.end() ? 0 : it->second.entries.size();
  }

  void Push(uint64_t flow, absl::Time deadline, T value) {
    auto [it, inserted] = flows_.try_emplace(flow);
    Flow& f = it->second;
    if (inserted) {
      f.epoch = ++epoch_;
      ring_.push_back({flow, f.epoch});
    }
    order_.push_back(Entry{flow, deadline, std::move(value)});
    f.entries.push_back(std::prev(order_.end()));
    if (longest_ == kNone || (longest_ != flow && f.entries.size() > flow_size(longest_))) longest_ = flow;
  }

  // The front of the next flow in round-robin order. Not empty().
  T PopNext() {
    while (true) {
      auto [flow, epoch] = ring_.front();
      ring_.pop_front();
      auto it = flows_.find(flow);
      if (it == flows_.end() || it->second.epoch != epoch) continue;  // emptied meanwhile
      Flow& f = it->second;
      auto node = f.entries.front();
      f.entries.pop_front();
      T value = std::move(node->value);
      order_.erase(node);
      if (f.entries.empty()) {
        Forget(it);
      } else {
        ring_.push_back({flow, epoch});
      }
      return value;
    }
  }

  // The earliest deadline; InfiniteFuture when empty.
  absl::Time next_deadline() const { return order_.empty() ? absl::InfiniteFuture() : order_.front().deadline; }

  // The oldest entry if its deadline is at or before `now`.
  std::optional<T> PopExpired(absl::Time now) {
    if (order_.empty() || order_.front().deadline > now) return std::nullopt;
    auto it = flows_.find(order_.front().flow);
    it->second.entries.pop_front();  // the oldest overall is the front of its flow
    T value = std::move(order_.front().value);
    order_.pop_front();
    if (it->second.entries.empty()) Forget(it);
    return value;
  }

  // The flow holding the most entries (nullopt when empty). Exact after a
  // push; after pops it may trail the true longest by the few entries a
  // round-robin pass takes from each flow.
  std::optional<uint64_t> longest() {
    if (order_.empty()) return std::nullopt;
    if (longest_ == kNone) {
      size_t best = 0;
      for (const auto& [flow, f] : flows_) {
        if (f.entries.size() > best) {
          best = f.entries.size();
          longest_ = flow;
        }
      }
    }
    return longest_;
  }

  // Removes the newest entry of `flow` (which holds at least one).
  T PopNewest(uint64_t flow) {
    auto it = flows_.find(flow);
    auto node = it->second.entries.back();
    it->second.entries.pop_back();
    T value = std::move(node->value);
    order_.erase(node);
    if (it->second.entries.empty()) Forget(it);
    return value;
  }

  // Every entry, oldest first, and the queue is empty.
  std::deque<T> TakeAll() {
    std::deque<T> all;
    for (Entry& e : order_) all.push_back(std::move(e.value));
    order_.clear();
    flows_.clear();
    ring_.clear();
    longest_ = kNone;
    return all;
  }

 private:
  struct Entry {
    uint64_t flow;
    absl::Time deadline;
    T value;
  };
  struct Flow {
    std::deque<typename std::list<Entry>::iterator> entries;
    uint64_t epoch = 0;  // tells this flow's ring slot from a stale one
  };
  static constexpr uint64_t kNone = ~uint64_t{0};

  void Forget(typename absl::flat_hash_map<uint64_t, Flow>::iterator it) {
    if (it->first == longest_) longest_ = kNone;
    flows_.erase(it);
    // Flows emptied by expiry or push-out leave their slot in the ring: drop
    // the stale slots once they outnumber the live ones.
    if (ring_.size() > 2 * flows_.size() + 64) {
      std::deque<std::pair<uint64_t, uint64_t>> live;
      for (const auto& slot : ring_) {
        auto f = flows_.find(slot.first);
        if (f != flows_.end() && f->second.epoch == slot.second) live.push_back(slot);
      }
      ring_ = std::move(live);
    }
  }

  std::list<Entry> order_;  // every entry, in push (deadline) order
  absl::flat_hash_map<uint64_t, Flow> flows_;
  std::deque<std::pair<uint64_t, uint64_t>> ring_;  // (flow, epoch), round-robin order
  uint64_t epoch_ = 0;
  uint64_t longest_ = kNone;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_FAIR_QUEUE_H_

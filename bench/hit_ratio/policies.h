#ifndef NODEDNS_BENCH_HIT_RATIO_POLICIES_H_
#define NODEDNS_BENCH_HIT_RATIO_POLICIES_H_

// Reference models of the candidate eviction policies, by entry count, for
// replaying traces (nodedns_hit_ratio). Written for clarity, single-threaded:
// they decide which policy nodedns uses, they are not nodedns's cache.
//
//   LRU; LRU in 16 shards with a hard cap of capacity/16 each (nodedns
//   before issue 16); SIEVE (Zhang et al., NSDI 2024); S3-FIFO (Yang et al.,
//   SOSP 2023); W-TinyLFU (Einziger et al., ACM ToS 2017, as in Caffeine:
//   1 % window LRU, segmented LRU main, count-min sketch admission); ARC
//   (Megiddo and Modha, FAST 2003).

#include <algorithm>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace nodedns::bench {

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  // A request: true on a hit; on a miss the name is stored.
  virtual bool Access(uint64_t key) = 0;
  virtual bool Contains(uint64_t key) const = 0;
};

inline uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Lru : public Policy {
 public:
  explicit Lru(size_t cap) : cap_(cap) {}
  std::string name() const override { return "LRU"; }
  bool Access(uint64_t k) override {
    auto it = index_.find(k);
    if (it != index_.end()) {
      list_.splice(list_.begin(), list_, it->second);
      return true;
    }
    if (list_.size() >= cap_) {
      index_.erase(list_.back());
      list_.pop_back();
    }
    list_.push_front(k);
    index_[k] = list_.begin();
    return false;
  }
  bool Contains(uint64_t k) const override { return index_.contains(k); }

 private:
  size_t cap_;
  std::list<uint64_t> list_;
  absl::flat_hash_map<uint64_t, std::list<uint64_t>::iterator> index_;
};

class ShardedLru : public Policy {
 public:
  ShardedLru(size_t cap, size_t shards) {
    for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Lru>(cap / shards));
  }
  std::string name() const override { return "LRU, 16 capped shards (before)"; }
  bool Access(uint64_t k) override { return Of(k).Access(k); }
  bool Contains(uint64_t k) const override { return shards_[Mix(k) % shards_.size()]->Contains(k); }

 private:
  Lru& Of(uint64_t k) { return *shards_[Mix(k) % shards_.size()]; }
  std::vector<std::unique_ptr<Lru>> shards_;
};

class Sieve : public Policy {
 public:
  explicit Sieve(size_t cap) : cap_(cap) {}
  std::string name() const override { return "SIEVE"; }
  bool Access(uint64_t k) override {
    auto it = index_.find(k);
    if (it != index_.end()) {
      it->second->visited = true;
      return true;
    }
    if (list_.size() >= cap_) Evict();
    list_.push_front({k, false});
    index_[k] = list_.begin();
    return false;
  }
  bool Contains(uint64_t k) const override { return index_.contains(k); }

 private:
  struct Node {
    uint64_t key;
    bool visited;
  };
  void Evict() {
    // The hand walks from the tail (oldest) toward the head, clearing marks.
    auto it = hand_ == list_.end() ? std::prev(list_.end()) : hand_;
    while (it->visited) {
      it->visited = false;
      it = it == list_.begin() ? std::prev(list_.end()) : std::prev(it);
    }
    hand_ = it == list_.begin() ? list_.end() : std::prev(it);
    index_.erase(it->key);
    list_.erase(it);
  }
  size_t cap_;
  std::list<Node> list_;
  std::list<Node>::iterator hand_ = list_.end();
  absl::flat_hash_map<uint64_t, std::list<Node>::iterator> index_;
};

class S3Fifo : public Policy {
 public:
  S3Fifo(size_t cap, int promote_after) : cap_(cap), promote_after_(promote_after) {}
  std::string name() const override { return "S3-FIFO (promote after " + std::to_string(promote_after_) + ")"; }
  bool Access(uint64_t k) override {
    auto it = index_.find(k);
    if (it != index_.end()) {
      it->second.freq = std::min(it->second.freq + 1, 3);
      return true;
    }
    while (small_.size() + main_.size() >= cap_) Evict();
    bool ghost = ghost_count_.erase(k) > 0;  // a ghost hit is forgotten
    auto& q = ghost ? main_ : small_;
    q.push_front(k);
    index_[k] = {q.begin(), ghost, 0};
    return false;
  }
  bool Contains(uint64_t k) const override { return index_.contains(k); }

 private:
  struct Meta {
    std::list<uint64_t>::iterator it;
    bool main;
    int freq;
  };
  void Evict() {
    size_t main_cap = cap_ - cap_ / 10;
    if (main_.size() > main_cap || small_.empty()) {
      EvictMain();
    } else {
      EvictSmall();
    }
  }
  void EvictSmall() {
    while (!small_.empty()) {
      uint64_t k = small_.back();
      small_.pop_back();
      Meta& m = index_[k];
      if (m.freq >= promote_after_) {
        main_.push_front(k);
        m = {main_.begin(), true, 0};
        continue;
      }
      index_.erase(k);
      ghost_.push_back(k);
      ++ghost_count_[k];
      if (ghost_.size() > cap_ - cap_ / 10) {
        auto g = ghost_count_.find(ghost_.front());
        if (g != ghost_count_.end() && --g->second == 0) ghost_count_.erase(g);
        ghost_.pop_front();
      }
      return;
    }
  }
  void EvictMain() {
    while (!main_.empty()) {
      uint64_t k = main_.back();
      Meta& m = index_[k];
      if (m.freq > 0) {
        --m.freq;
        main_.splice(main_.begin(), main_, m.it);
        continue;
      }
      main_.pop_back();
      index_.erase(k);
      return;
    }
  }
  size_t cap_;
  int promote_after_;
  std::list<uint64_t> small_, main_;
  std::deque<uint64_t> ghost_;
  absl::flat_hash_map<uint64_t, int> ghost_count_;
  absl::flat_hash_map<uint64_t, Meta> index_;
};

class WTinyLfu : public Policy {
 public:
  explicit WTinyLfu(size_t cap)
      : window_cap_(std::max<size_t>(1, cap / 100)),
        main_cap_(cap - window_cap_),
        protected_cap_(main_cap_ * 8 / 10),
        width_(Pow2(cap)),
        sketch_(4 * width_, 0),
        reset_at_(10 * cap) {}
  std::string name() const override { return "W-TinyLFU"; }
  bool Access(uint64_t k) override {
    Count(k);
    auto it = index_.find(k);
    if (it != index_.end()) {
      Meta& m = it->second;
      if (m.where == kProbation) {
        protected_.splice(protected_.begin(), probation_, m.it);
        m.where = kProtected;
        if (protected_.size() > protected_cap_) {
          uint64_t d = protected_.back();
          probation_.splice(probation_.begin(), protected_, std::prev(protected_.end()));
          index_[d].where = kProbation;
        }
      } else {
        auto& l = m.where == kWindow ? window_ : protected_;
        l.splice(l.begin(), l, m.it);
      }
      return true;
    }
    window_.push_front(k);
    index_[k] = {window_.begin(), kWindow};
    if (window_.size() > window_cap_) {
      uint64_t c = window_.back();
      if (probation_.size() + protected_.size() < main_cap_) {
        probation_.splice(probation_.begin(), window_, std::prev(window_.end()));
        index_[c].where = kProbation;
      } else {
        auto& victims = probation_.empty() ? protected_ : probation_;
        uint64_t v = victims.back();
        if (Estimate(c) > Estimate(v)) {
          victims.pop_back();
          index_.erase(v);
          probation_.splice(probation_.begin(), window_, std::prev(window_.end()));
          index_[c].where = kProbation;
        } else {
          window_.pop_back();
          index_.erase(c);
        }
      }
    }
    return false;
  }
  bool Contains(uint64_t k) const override { return index_.contains(k); }

 private:
  enum Where { kWindow, kProbation, kProtected };
  struct Meta {
    std::list<uint64_t>::iterator it;
    Where where;
  };
  static size_t Pow2(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }
  size_t Slot(uint64_t k, int row) const { return row * width_ + (Mix(k + 0x9e3779b97f4a7c15ULL * (row + 1)) & (width_ - 1)); }
  void Count(uint64_t k) {
    for (int r = 0; r < 4; ++r) {
      uint8_t& c = sketch_[Slot(k, r)];
      if (c < 15) ++c;
    }
    if (++samples_ >= reset_at_) {  // aging: halve every counter
      for (uint8_t& c : sketch_) c >>= 1;
      samples_ /= 2;
    }
  }
  int Estimate(uint64_t k) const {
    int m = 15;
    for (int r = 0; r < 4; ++r) m = std::min<int>(m, sketch_[Slot(k, r)]);
    return m;
  }
  size_t window_cap_, main_cap_, protected_cap_, width_;
  std::vector<uint8_t> sketch_;
  size_t reset_at_, samples_ = 0;
  std::list<uint64_t> window_, probation_, protected_;
  absl::flat_hash_map<uint64_t, Meta> index_;
};

class Arc : public Policy {
 public:
  explicit Arc(size_t cap) : c_(cap) {}
  std::string name() const override { return "ARC"; }
  bool Access(uint64_t x) override {
    auto it = index_.find(x);
    if (it != index_.end() && (it->second.list == kT1 || it->second.list == kT2)) {
      MoveTo(x, kT2);
      return true;
    }
    if (it != index_.end() && it->second.list == kB1) {
      p_ = std::min<double>(c_, p_ + std::max<double>(1, double(l_[kB2].size()) / l_[kB1].size()));
      Replace(false);
      MoveTo(x, kT2);
      return false;
    }
    if (it != index_.end() && it->second.list == kB2) {
      p_ = std::max<double>(0, p_ - std::max<double>(1, double(l_[kB1].size()) / l_[kB2].size()));
      Replace(true);
      MoveTo(x, kT2);
      return false;
    }
    size_t t1b1 = l_[kT1].size() + l_[kB1].size();
    size_t total = t1b1 + l_[kT2].size() + l_[kB2].size();
    if (t1b1 == c_) {
      if (l_[kT1].size() < c_) {
        Drop(kB1);
        Replace(false);
      } else {
        Drop(kT1);
      }
    } else if (total >= c_) {
      if (total == 2 * c_) Drop(kB2);
      Replace(false);
    }
    l_[kT1].push_front(x);
    index_[x] = {kT1, l_[kT1].begin()};
    return false;
  }
  bool Contains(uint64_t k) const override {
    auto it = index_.find(k);
    return it != index_.end() && (it->second.list == kT1 || it->second.list == kT2);
  }

 private:
  enum List { kT1, kT2, kB1, kB2 };
  struct Meta {
    List list;
    std::list<uint64_t>::iterator it;
  };
  void MoveTo(uint64_t x, List to) {
    Meta& m = index_[x];
    l_[to].splice(l_[to].begin(), l_[m.list], m.it);
    m.list = to;
  }
  void Drop(List l) {
    index_.erase(l_[l].back());
    l_[l].pop_back();
  }
  void Replace(bool in_b2) {
    size_t t1 = l_[kT1].size();
    if (t1 >= 1 && ((in_b2 && double(t1) == p_) || double(t1) > p_)) {
      MoveTo(l_[kT1].back(), kB1);
    } else if (!l_[kT2].empty()) {
      MoveTo(l_[kT2].back(), kB2);
    } else if (t1 >= 1) {
      MoveTo(l_[kT1].back(), kB1);
    }
  }
  size_t c_;
  double p_ = 0;
  std::list<uint64_t> l_[4];
  absl::flat_hash_map<uint64_t, Meta> index_;
};

}  // namespace nodedns::bench

#endif  // NODEDNS_BENCH_HIT_RATIO_POLICIES_H_

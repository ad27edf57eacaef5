#include "lib/resolver/client_share.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace nodedns::resolver {

namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer: deterministic, well spread
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t PrefixMask(int bits, int width) {
  bits = std::clamp(bits, 0, width);
  if (bits == 0) return 0;
  return (~uint64_t{0} << (width - bits)) & (width == 64 ? ~uint64_t{0} : ((uint64_t{1} << width) - 1));
}

}  // namespace

upstream::FlowId ClientFlow(const SocketAddress& peer, int ipv4_prefix, int ipv6_prefix) {
  uint64_t key = 0;
  if (peer.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(peer.sockaddr_ptr());
    key = (uint64_t{4} << 32) | (ntohl(sin->sin_addr.s_addr) & PrefixMask(ipv4_prefix, 32));
  } else if (peer.family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(peer.sockaddr_ptr());
    uint64_t hi = 0;
    for (int i = 0; i < 8; ++i) hi = (hi << 8) | sin6->sin6_addr.s6_addr[i];
    if (ipv6_prefix > 64) {  // beyond /64: fold in the low half, masked
      uint64_t lo = 0;
      for (int i = 8; i < 16; ++i) lo = (lo << 8) | sin6->sin6_addr.s6_addr[i];
      hi ^= Mix(lo & PrefixMask(ipv6_prefix - 64, 64));
    } else {
      hi &= PrefixMask(ipv6_prefix, 64);
    }
    key = Mix(hi ^ 0x6666666666666666ULL);
  }
  upstream::FlowId flow = Mix(key);
  if (flow == ~uint64_t{0}) return flow - 1;
  return flow <= ClientShares::kUntracked ? flow + 2 : flow;
}

void ClientShares::Rotate(absl::Time now) {
  if (now - bucket_start_ < options_.window) return;
  bool skipped = now - bucket_start_ >= 2 * options_.window;
  for (auto it = window_.begin(); it != window_.end();) {
    Counts& c = it->second;
    c.previous = skipped ? 0 : c.current;
    c.current = 0;
    if (c.previous == 0) {
      window_.erase(it++);  // absl: erase does not invalidate other iterators
    } else {
      ++it;
    }
  }
  total_.previous = skipped ? 0 : total_.current;
  total_.current = 0;
  // Buckets start on multiples of the window after the first miss, so
  // sparse traffic does not shift them.
  bucket_start_ = skipped || bucket_start_ == absl::InfinitePast()
                      ? now
                      : bucket_start_ + options_.window;
}

double ClientShares::Weight(absl::Time now) const {
  double elapsed = absl::FDivDuration(now - bucket_start_, options_.window);
  return std::clamp(1.0 - elapsed, 0.0, 1.0);
}

double ClientShares::recent(upstream::FlowId flow, absl::Time now) {
  Rotate(now);
  auto it = window_.find(flow);
  if (it == window_.end()) return 0;
  return it->second.current + it->second.previous * Weight(now);
}

bool ClientShares::NoteMiss(upstream::FlowId flow, absl::Time now, bool* untracked) {
  Rotate(now);
  *untracked = false;
  auto it = window_.find(flow);
  if (it == window_.end()) {
    if (window_.size() >= options_.max_clients) {
      *untracked = true;
      flow = kUntracked;
    }
    it = window_.try_emplace(flow).first;
  }
  ++it->second.current;
  ++total_.current;
  double w = Weight(now);
  double mine = it->second.current + it->second.previous * w;
  double all = total_.current + total_.previous * w;
  double min = options_.min_client_misses * absl::ToDoubleSeconds(options_.window);
  // Heavy only beside another client: a lone client (a pod starting up, a
  // cold burst) is not shed for want of anyone to be fair to.
  return window_.size() >= 2 && mine >= min && mine * static_cast<double>(window_.size()) >= all;
}

void ClientShares::AddPending(upstream::FlowId flow) { ++pending_[flow]; }

void ClientShares::RemovePending(upstream::FlowId flow) {
  auto it = pending_.find(flow);
  if (it == pending_.end()) return;
  if (--it->second == 0) pending_.erase(it);
}

bool ClientShares::OverPendingShare(upstream::FlowId flow, size_t total) const {
  size_t mine = pending_of(flow);
  size_t clients = std::max<size_t>(1, pending_.size());
  return mine >= options_.min_client_pending && mine * clients >= total;
}

}  // namespace nodedns::resolver

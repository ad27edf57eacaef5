#ifndef NODEDNS_LIB_RESOLVER_RESOLVER_H_
#define NODEDNS_LIB_RESOLVER_RESOLVER_H_

// The query pipeline of one worker, independent of the transport: validate
// the query, answer it from the cache, or join/start the one upstream query
// for its key and answer every waiting client when that completes; serve
// stale data (RFC 8767, with RFC 8914 Extended DNS Errors) according to the
// zone's health:
//   fresh entry            -> answer (and prefetch it, jittered, in the last
//                             part of its TTL if it is asked for there)
//   stale, refresh failed in the last failure_recheck, and the zone has not
//          answered since (or answered less than failure_recheck_min after
//          the failure)  -> stale at once
//   stale, zone down       -> stale at once, nothing sent upstream
//   stale, zone degraded   -> stale at once, refresh in the background
//   stale, zone healthy    -> refresh; stale if no answer within the zone's
//                             client timeout; the refresh still updates the cache
//   miss of a heavy client while the worker is overloaded
//                          -> dropped (UDP) or REFUSED (TCP), before any
//                             upstream work (load shedding, [shed])
//   miss of a client holding its share of the open upstream queries under
//          pending pressure -> SERVFAIL, never cached ([fair_share])
//   miss, zone down        -> SERVFAIL + EDE 22 at once
//   miss                   -> forward; an upstream's failure with nothing
//                             stale to fall back on is answered SERVFAIL and
//                             cached briefly (RFC 9520); a failure of our own
//                             making (limits, queue, shutdown) is answered
//                             SERVFAIL + EDE 22 and never cached
//
// Threading: a Resolver belongs to one worker thread (its loop); it is not
// thread-safe. The cache it uses is shared and thread-safe.

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/resolver/counters.h"
#include "lib/common/socket_address.h"
#include "lib/common/timer_queue.h"
#include "lib/dns/answer.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/query_view.h"
#include "lib/resolver/client_share.h"
#include "lib/resolver/loop_probes.h"
#include "lib/resolver/options.h"
#include "lib/upstream/router.h"
#include "lib/upstream/upstream.h"

namespace nodedns::resolver {

class ReplySink;

// Where an answer that is not ready at once must be sent later.
// The local address a UDP query was sent to, known when the listener is
// bound to a wildcard (0.0.0.0, ::): its answer must leave from that address
// (IP_PKTINFO, IPV6_PKTINFO), or the client drops it.
struct PacketInfo {
  int family = 0;  // 0: unknown (a specific address answers from itself)
  int ifindex = 0;
  in6_addr addr{};  // AF_INET: the first 4 octets hold the in_addr
};

struct ReplyTarget {
  ReplySink* sink = nullptr;
  SocketAddress peer;       // UDP client
  PacketInfo local;         // UDP, wildcard listeners
  uint64_t connection = 0;  // TCP connection id
  bool tcp = false;
  int64_t received_ns = 0;  // MonotonicNanos() when the query was read (latency histogram)
};

// Implemented by the listeners. Called on the worker thread; the answer span
// is valid only during the call.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void SendReply(const ReplyTarget& to, absl::Span<const uint8_t> answer) = 0;
};


class Resolver {
 public:
  // Room HandleQuery needs in `out` for a TCP answer; UDP callers may pass
  // less (at least max_udp_size + dns::kAnswerOverhead).
  static constexpr size_t kMaxAnswerSize = dns::kMaxMessageSize + dns::kAnswerOverhead;

  // None of the pointers are owned; all must outlive the Resolver.
  Resolver(const ResolverOptions& options, cache::Cache* cache, upstream::Router* router, const SteadyClock* clock,
           TimerQueue* timers, Counters* counters, uint32_t seed = 1, LoopProbes* loop_probes = nullptr);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  enum class Outcome : uint8_t { kAnswered, kPending, kDropped };

  // kAnswered: the answer is in out[0, *out_len). kPending: it will go to
  // `to` through its sink. kDropped: nothing will be sent (counted).
  Outcome HandleQuery(const uint8_t* query, size_t len, const ReplyTarget& to, uint8_t* out, size_t cap,
                      size_t* out_len);

  size_t pending() const { return pending_.size() + superseded_.size(); }

  // A background query for a pinned name's cache key (pins.h), unless one is
  // already in flight for it, the zone is down or answers it itself
  // (filter_aaaa). True when a query is (now) in flight for it.
  bool RefreshPinned(std::string_view key);

  // The listener's measure of load: a UDP socket's receive queue held
  // `queued` of its `capacity` bytes when it was read. At or above the
  // [shed] backlog share the worker counts as overloaded for `hold`.
  void NoteReceiveBacklog(size_t queued, size_t capacity);
  // Overloaded now: a recent receive backlog, or pending pressure.
  bool overloaded(absl::Time now) const;
  const ClientShares& client_shares() const { return shares_; }

 private:
  enum class StaleReason : uint8_t { kTimeout, kFailure, kBreaker, kOverCap };
  struct Waiter {
    ReplyTarget to;
    dns::QueryView q;
    std::string prefix;  // the client's header and question, for ID and case
    bool stale_fallback = false;  // answered stale when the client timeout passes
  };
  struct Pending {
    const upstream::Zone* zone = nullptr;
    std::vector<Waiter> waiters;
    TimerQueue::Id stale_timer = 0;
    bool refresh = false;
    absl::Time started_at;
    uint64_t id = 0;
    std::string key;
    upstream::FlowId client = upstream::kNoFlow;  // who started it (ClientShares' pending)
  };

  Outcome HandleStale(const uint8_t* query, size_t len, const dns::QueryView& q, const dns::CacheKey& key,
                      const ReplyTarget& to, uint8_t* out, size_t cap, size_t* out_len);
  Outcome HandleMiss(const uint8_t* query, size_t len, const dns::QueryView& q, const dns::CacheKey& key,
                     const ReplyTarget& to, uint8_t* out, size_t cap, size_t* out_len);
  // A cached SERVFAIL (hit_) from before the zone's newest good answer.
  bool ServfailOutdated(const dns::CacheKey& key, absl::Time now);
  static Waiter MakeWaiter(const ReplyTarget& to, const dns::QueryView& q, const uint8_t* query,
                           bool stale_fallback);
  // Answered stale for the waiters with a fallback after the zone's client timeout.
  void ArmStaleTimer(Pending& p, absl::Time now);
  // The pending query `id` for `key`: in pending_, or superseded_.
  Pending* FindPending(const std::string& key, uint64_t id);
  std::unique_ptr<Pending> TakePending(const std::string& key, uint64_t id);
  // The size limit and advertised size of an answer to this client.
  dns::RenderParams ParamsFor(const dns::QueryView& q, bool tcp) const;
  // Renders hit_ (already in `out`) for this client (render.h: TTLs, EDE).
  size_t AnswerFromHit(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                       bool stale);
  size_t AnswerStale(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                     StaleReason reason);
  size_t Error(const uint8_t* query, size_t len, const dns::QueryView* q, uint16_t rcode, int ede, uint8_t* out,
               size_t cap);
  upstream::SendResult StartUpstream(std::string_view key, const upstream::Zone* zone, upstream::Priority priority,
                                     upstream::FlowId client, Pending** created);
  // Load shedding and the per-client cap for a miss of `to` that would start
  // an upstream query: kPending when it may go on, otherwise what was done
  // (dropped, or answered in `out`). *client becomes ClientShares::kUntracked
  // when the table is full.
  Outcome Admit(const uint8_t* query, size_t len, const dns::QueryView& q, const ReplyTarget& to,
                upstream::FlowId* client, uint8_t* out, size_t cap, size_t* out_len);
  // The pending entry `p` is done: its client's share is released.
  void Release(const Pending& p);
  void OnUpstreamAnswer(const std::string& key, uint64_t id, const absl::Status& status,
                        absl::Span<const uint8_t> answer);
  // The cache image of a usable upstream answer, or nullopt for a failure
  // (counted; *ede is the EDE for a SERVFAIL to the clients).
  std::optional<dns::CacheImage> Classify(std::string_view key, const absl::Status& status,
                                          absl::Span<const uint8_t> answer, int* ede);
  // The query in flight for `it` was sent well before the newest one the zone
  // answered promptly: presumed lost (sent into an outage that has ended).
  // Sends it again (the old one, with its waiters, moves to superseded_);
  // returns the pending entry to join (the old one if nothing was sent).
  Pending* ResendIfLost(std::string_view key, Pending* p, absl::Time now);
  void OnStaleTimer(const std::string& key, uint64_t id);
  void FlushStaleWaiters(Pending& p);
  void MaybePrefetch(const dns::CacheKey& key, absl::Time now);
  // Answers `waiters` from the cache entry for `key` (stale or fresh). False
  // if there is no entry.
  bool AnswerFromCache(std::string_view key, const std::vector<Waiter>& waiters, StaleReason reason);
  void AnswerWaiters(const std::vector<Waiter>& waiters, const dns::CacheImage* image, int ede_on_failure);
  void CountStale(StaleReason reason, uint32_t stale_seconds);
  void CountAnswer(const uint8_t* answer, bool truncated);

  const ResolverOptions options_;
  cache::Cache* const cache_;
  upstream::Router* const router_;
  const SteadyClock* const clock_;
  TimerQueue* const timers_;
  Counters* const counters_;
  std::mt19937 rng_;
  LoopProbes* const loop_probes_;  // nullptr: none
  absl::flat_hash_map<std::string, std::unique_ptr<Pending>> pending_;  // by key
  // Queries sent again by ResendIfLost: still answering their own waiters.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Pending>> superseded_;  // by id
  uint64_t next_pending_id_ = 1;
  absl::flat_hash_map<std::string, TimerQueue::Id> prefetch_scheduled_;
  ClientShares shares_;
  absl::Time overloaded_until_ = absl::InfinitePast();  // receive backlog seen recently
  mutable bool was_overloaded_ = false;                 // for counting episodes
  cache::HitInfo hit_;                 // scratch for lookups (no per-query allocation)
  std::vector<uint8_t> reply_buf_;     // scratch for asynchronous answers
  std::vector<uint8_t> entry_buf_;     // scratch: a cache entry re-read for waiters
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_RESOLVER_H_

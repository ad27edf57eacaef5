#ifndef NODEDNS_LIB_RESOLVER_RESOLVER_H_
#define NODEDNS_LIB_RESOLVER_RESOLVER_H_

// The query pipeline of one worker, independent of the transport: validate
// the query, answer it from the cache, or join/start the one upstream query
// for its key and answer every waiting client when that completes.
//
// Threading: a Resolver belongs to one worker thread (its loop); it is not
// thread-safe. The cache it uses is shared and thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/counters.h"
#include "lib/common/socket_address.h"
#include "lib/dns/answer.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/query_view.h"
#include "lib/upstream/router.h"

namespace nodedns::resolver {

class ReplySink;

// Where an answer that is not ready at once must be sent later.
struct ReplyTarget {
  ReplySink* sink = nullptr;
  SocketAddress peer;       // UDP client
  uint64_t connection = 0;  // TCP connection id
  bool tcp = false;
};

// Implemented by the listeners. Called on the worker thread; the answer span
// is valid only during the call.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void SendReply(const ReplyTarget& to, absl::Span<const uint8_t> answer) = 0;
};

struct ResolverOptions {
  uint16_t max_udp_size = dns::kDefaultEdnsPayload;
  dns::TtlPolicy ttl;
  size_t max_pending = 10000;  // distinct upstream queries in flight
  size_t max_waiters = 1000;   // clients waiting on one upstream query
};

class Resolver {
 public:
  // Room HandleQuery needs in `out` for a TCP answer; UDP callers may pass
  // less (at least max_udp_size + dns::kAnswerOverhead).
  static constexpr size_t kMaxAnswerSize = dns::kMaxMessageSize + dns::kAnswerOverhead;

  // None of the pointers are owned; all must outlive the Resolver.
  Resolver(const ResolverOptions& options, cache::Cache* cache, upstream::Router* router, const Clock* clock,
           Counters* counters);
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  enum class Outcome : uint8_t { kAnswered, kPending, kDropped };

  // kAnswered: the answer is in out[0, *out_len). kPending: it will go to
  // `to` through its sink. kDropped: nothing will be sent (counted).
  Outcome HandleQuery(const uint8_t* query, size_t len, const ReplyTarget& to, uint8_t* out, size_t cap,
                      size_t* out_len);

  size_t pending() const { return pending_.size(); }

 private:
  struct Waiter {
    ReplyTarget to;
    dns::QueryView q;
    std::string prefix;  // the client's header and question, for ID and case
  };
  struct Pending {
    std::vector<Waiter> waiters;
  };

  size_t AnswerFromImage(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                         uint32_t age);
  size_t Error(const uint8_t* query, size_t len, const dns::QueryView* q, uint16_t rcode, int ede, uint8_t* out,
               size_t cap);
  void StartUpstream(const dns::CacheKey& key, const dns::QueryView& q);
  void OnUpstreamAnswer(const std::string& key, const absl::Status& status, absl::Span<const uint8_t> answer);
  void AnswerWaiters(Pending& p, const dns::CacheImage* image, int ede_on_failure);
  void CountAnswer(const uint8_t* answer, bool truncated);

  const ResolverOptions options_;
  cache::Cache* const cache_;
  upstream::Router* const router_;
  const Clock* const clock_;
  Counters* const counters_;
  absl::flat_hash_map<std::string, std::unique_ptr<Pending>> pending_;
  cache::HitInfo hit_;                 // scratch for lookups (no per-query allocation)
  std::vector<uint8_t> reply_buf_;     // scratch for asynchronous answers
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_RESOLVER_H_

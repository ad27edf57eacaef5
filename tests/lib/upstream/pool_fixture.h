// The pool's tests (pool_test.cc, pool_health_test.cc): two fake
// transports the test answers by hand, a fake clock and its timer queue.
#ifndef NODEDNS_TESTS_LIB_UPSTREAM_POOL_FIXTURE_H_
#define NODEDNS_TESTS_LIB_UPSTREAM_POOL_FIXTURE_H_

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "lib/dns/query_view.h"
#include "lib/dns/writers.h"
#include "lib/upstream/pool.h"
#include "tests/support/all_counters.h"
#include "tests/support/fake_clock.h"

namespace nodedns::upstream::pool_test {

class FakeTransport : public Transport {
 public:
  void Send(absl::Span<const uint8_t> q, Callback done) override {
    sent.push_back({std::vector<uint8_t>(q.begin(), q.end()), std::move(done)});
  }
  void Reply(uint8_t rcode) {
    auto s = std::move(sent.front());
    sent.pop_front();
    std::vector<uint8_t> a = s.first;
    a[2] |= 0x80;
    a[3] = rcode;
    s.second(absl::OkStatus(), a);
  }
  // The answer to the retry of the oldest query: its first attempt, sent
  // when the query was, got no answer; the retry went out `retry_after` later.
  void ReplyToRetry(absl::Time query_sent, absl::Duration retry_after, absl::Time now) {
    timing.sent = query_sent + retry_after;
    timing.received = now;
    timing.earlier_attempts = 1;
    Reply(dns::kNoError);
    timing = {};
  }
  AnswerTiming last_answer() const override { return timing; }
  void Fail() {
    auto s = std::move(sent.front());
    sent.pop_front();
    s.second(absl::DeadlineExceededError("t"), {});
  }
  std::deque<std::pair<std::vector<uint8_t>, Callback>> sent;
  AnswerTiming timing;
};

class PoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<UpstreamPool> Make(PoolOptions o) {
    return std::make_unique<UpstreamPool>(
        o, std::vector<UpstreamPool::ServerSpec>{{"a", &a_}, {"b", &b_}}, &clock_, &timers_, &counters_, 3);
  }
  SendResult Send(UpstreamPool& p, Priority prio = Priority::kClient, uint8_t tag = 0, FlowId flow = 7) {
    // "<tag>." tells queries apart in the transports' queues.
    std::string name = {1, static_cast<char>('a' + tag), 0};
    std::vector<uint8_t> q(dns::kMaxQuerySize);
    q.resize(dns::WriteQuery(name, dns::kTypeA, dns::kClassIN, false, false, q.data()));
    return p.Send(q, prio, flow, [this, tag](const absl::Status& s, absl::Span<const uint8_t> answer) {
      results.push_back(s.ok() && answer.size() >= 4 ? answer[3] & 0x0f : -1);
      codes.push_back(s.code());
      done_tags.push_back(tag);
    });
  }
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    timers_.RunDue(clock_.Now());
  }
  // A pool that has had its first good answer (a new pool is degraded and
  // probes at once).
  std::unique_ptr<UpstreamPool> Proven(PoolOptions o) {
    auto p = Make(o);
    Send(*p);
    a_.Reply(dns::kNoError);
    results.clear();
    codes.clear();
    done_tags.clear();
    return p;
  }
  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  FakeTransport a_, b_;
  std::vector<int> results;
  std::vector<absl::StatusCode> codes;
  std::vector<uint8_t> done_tags;  // the tag of each completed query, in order
};

}  // namespace nodedns::upstream::pool_test

#endif  // NODEDNS_TESTS_LIB_UPSTREAM_POOL_FIXTURE_H_

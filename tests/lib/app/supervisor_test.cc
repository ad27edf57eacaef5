// The fail-open supervisor's policy pieces: what counts as an unexpected
// end, the restart backoff, and the state handed to each child. The process
// itself (fork, signals, withdrawal) is tested by
// tests/integration/fail_open_test.cc in network namespaces.

#include "lib/app/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns::app {
namespace {

using ::testing::HasSubstr;

int EndOf(void (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(99);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return st;
}

TEST(SupervisorTest, OnlyExitStatusZeroAndOneAreTheDaemonsOwnDecision) {
  int killed = EndOf([] { raise(SIGKILL); });
  int aborted = EndOf([] { raise(SIGABRT); });
  int clean = EndOf([] { _exit(0); });
  int refused = EndOf([] { _exit(1); });
  int other = EndOf([] { _exit(2); });
  EXPECT_EQ(ClassifyEnd(killed), ChildEnd::kUnexpected);
  EXPECT_EQ(ClassifyEnd(aborted), ChildEnd::kUnexpected);
  EXPECT_EQ(ClassifyEnd(clean), ChildEnd::kDecided);
  EXPECT_EQ(ClassifyEnd(refused), ChildEnd::kDecided);
  EXPECT_EQ(ClassifyEnd(other), ChildEnd::kUnexpected);
  EXPECT_THAT(DescribeEnd(killed), HasSubstr("killed by signal 9"));
  EXPECT_EQ(DescribeEnd(other), "exited with status 2");
}

TEST(SupervisorTest, BackoffDoublesWhileChildrenDieYoungAndResetsAfterAHealthyRun) {
  RestartBackoff b(absl::Milliseconds(100), absl::Seconds(1), absl::Seconds(60));
  EXPECT_EQ(b.Next(absl::Seconds(1)), absl::Milliseconds(100));
  EXPECT_EQ(b.Next(absl::Seconds(1)), absl::Milliseconds(200));
  EXPECT_EQ(b.Next(absl::Seconds(1)), absl::Milliseconds(400));
  EXPECT_EQ(b.Next(absl::Seconds(1)), absl::Milliseconds(800));
  EXPECT_EQ(b.Next(absl::Seconds(1)), absl::Seconds(1));  // capped
  EXPECT_EQ(b.Next(absl::Seconds(1)), absl::Seconds(1));
  EXPECT_EQ(b.Next(absl::Seconds(60)), absl::Milliseconds(100));  // lived long enough: from the start
  EXPECT_EQ(b.Next(absl::Seconds(2)), absl::Milliseconds(200));
}

TEST(SupervisorTest, StateCrossesToTheChildAndBadTextIsRefused) {
  SupervisorState s;
  s.restarts = 3;
  s.fail_opens = 2;
  s.last_exit = DescribeEnd(EndOf([] { raise(SIGKILL); }));
  s.last_withdrawal = absl::Microseconds(12345);
  auto back = SupervisorState::FromEnv(s.ToEnv());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->restarts, 3u);
  EXPECT_EQ(back->fail_opens, 2u);
  EXPECT_EQ(back->last_exit, s.last_exit);
  EXPECT_EQ(back->last_withdrawal, absl::Microseconds(12345));
  // A field from a newer supervisor is skipped.
  EXPECT_TRUE(SupervisorState::FromEnv(s.ToEnv() + ";later=1").has_value());
  for (const char* bad : {"", "restarts=x;fail_opens=0;last_withdrawal_us=0;last_exit=", "restarts=1",
                          "restarts=1;fail_opens=1;last_withdrawal_us=-5;last_exit=", "garbage"}) {
    EXPECT_FALSE(SupervisorState::FromEnv(bad).has_value()) << bad;
  }
  MetricSet m;
  back->AppendMetrics(&m);
  EXPECT_EQ(m.GetCount("supervisor", "restarts"), 3u);
  EXPECT_EQ(m.GetCount("supervisor", "fail_opens"), 2u);
  EXPECT_EQ(m.GetCount("supervisor", "supervised"), 1u);
}

}  // namespace
}  // namespace nodedns::app

#ifndef NODEDNS_LIB_COMMON_THREAD_ROLE_H_
#define NODEDNS_LIB_COMMON_THREAD_ROLE_H_

// "Only the loop's thread touches this", as a capability that clang's
// thread-safety analysis checks (-Wthread-safety -Werror=thread-safety in every
// clang build) and, in builds with assertions, a check at run time.
//
// A ThreadRole is held by one thread at a time: the thread that constructs
// it, until the loop's own thread takes it over (Bind() at the start of the
// thread), and the thread that joins that one afterwards (Bind() after the
// join). Thread start and join order those handovers. Fields only the holder
// may touch are ABSL_GUARDED_BY(role), functions only it may call
// ABSL_EXCLUSIVE_LOCKS_REQUIRED(role); code the loop runs (a libuv callback, a
// posted task, a timer) begins with role.AssertHeld(), which tells the
// analysis that the role is held there, and checks it.
//
// Chromium's SequenceChecker with GUARDED_BY_CONTEXT is the same idea.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace nodedns {

class ABSL_LOCKABLE ThreadRole {
 public:
  explicit ThreadRole(const char* name) : name_(name), owner_(std::this_thread::get_id()) {}
  ThreadRole(const ThreadRole&) = delete;
  ThreadRole& operator=(const ThreadRole&) = delete;

  // The calling thread holds the role from now on.
  void Bind() { owner_.store(std::this_thread::get_id(), std::memory_order_relaxed); }

  // The caller runs on the thread holding the role. Aborts (with assertions
  // on) when it does not: a libuv handle or a loop-owned object touched
  // from another thread is a data race.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {
#ifndef NDEBUG
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      std::fprintf(stderr, "nodedns: %s state touched from another thread\n", name_);
      std::abort();
    }
#endif
  }
  const char* name() const { return name_; }

 private:
  const char* const name_;
  std::atomic<std::thread::id> owner_;
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_THREAD_ROLE_H_

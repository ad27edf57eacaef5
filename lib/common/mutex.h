#ifndef NODEDNS_LIB_COMMON_MUTEX_H_
#define NODEDNS_LIB_COMMON_MUTEX_H_

// The mutex of nodedns's shared state (the cache's shards, the workers' task
// lists, the server's configuration), with the thread-safety annotations that
// clang checks (ABSL_GUARDED_BY(mu) and friends work with it as with
// absl::Mutex).
//
// absl::Mutex in every build but one: ThreadSanitizer sees neither its
// acquire nor its release, because Debian's abseil is a prebuilt library
// without TSan's instrumentation (abseil announces its lock operations to TSan
// only when it is itself compiled with -fsanitize=thread). Under TSan every
// access inside a critical section would then be reported as a data race. So
// the TSan build (-DNODEDNS_TSAN=ON) uses std::mutex (pthread, which TSan
// intercepts) and std::condition_variable behind the same interface: the
// critical sections and their happens-before edges are the same, only the
// lock underneath differs.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NODEDNS_MUTEX_FOR_TSAN 1
#endif
#endif

namespace nodedns {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

#ifndef NODEDNS_MUTEX_FOR_TSAN
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.Lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  // Held: releases the lock until cond() is true (evaluated under the lock)
  // or `timeout` has passed; holds it again on return. Returns cond().
  template <typename Cond>
  bool AwaitWithTimeout(const Cond& cond, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  }

 private:
  absl::Mutex mu_;
#else
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.unlock();
    cv_.notify_all();  // a waiter's condition may now hold
  }
  template <typename Cond>
  bool AwaitWithTimeout(const Cond& cond, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    // The analysis cannot see that wait_for calls the predicate with mu_ held.
    bool ok = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                           [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return cond(); });
    lock.release();  // still held, by the caller's MutexLock
    return ok;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
#endif
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_MUTEX_H_

#include "lib/snapshot/keeper.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <memory>

#include "lib/common/clock.h"
#include "lib/common/guarded.h"
#include "lib/common/uv_status.h"

namespace nodedns::snapshot {

namespace {

// Durations and the last write's time are on the same base as Moment::Now()
// (the system steady clock), which the snapshot format's conversions use.
absl::Time SteadyNow() { return SystemSteadyClock::Get()->Now(); }

TimedWrite WriteTimed(const cache::Cache& cache, const std::string& path) {
  Moment t0 = Moment::Now();
  TimedWrite w;
  try {  // may run on libuv's thread pool: nothing may escape
    w.result = Write(cache, path, t0);
  } catch (const std::exception& e) {
    w.result = absl::ResourceExhaustedError(std::string("snapshot write: ") + e.what());
  }
  w.took = SteadyNow() - t0.time.steady;
  return w;
}

TimedWrite Closing() {
  TimedWrite w;
  w.result = absl::UnavailableError("shutting down; the final snapshot is written at exit");
  return w;
}

}  // namespace

struct Keeper::Work {
  uv_work_t req;
  Keeper* self;
  std::string path;
  TimedWrite write;
};

Keeper::Keeper(uv_loop_t* loop, cache::Cache* cache, std::string path)
    : loop_(loop), cache_(cache), timer_("periodic snapshot", [this] { WriteAsync(nullptr); }) {
  stats_.path = std::move(path);
}

absl::Status Keeper::Init() { return timer_.Init(loop_); }

void Keeper::Load(MaxStaleFn max_stale) {
  if (!enabled()) return;
  const std::string& path = stats_.path;
  Moment t0 = Moment::Now();
  auto loaded = snapshot::Load(path, cache_, t0, max_stale);
  stats_.load_seconds = absl::ToDoubleSeconds(SteadyNow() - t0.time.steady);
  if (loaded.ok()) {
    stats_.loaded_entries = loaded->loaded;
    stats_.load_expired = loaded->expired;
    spdlog::info("snapshot {}: loaded {} of {} entries ({} past max_stale dropped) in {:.3f} s; written {}", path,
                 loaded->loaded, loaded->entries_in_file, loaded->expired, stats_.load_seconds,
                 absl::FormatTime(loaded->written_at));
  } else if (absl::IsNotFound(loaded.status())) {
    spdlog::info("snapshot {}: no file yet, starting with an empty cache", path);
  } else {
    stats_.load_error = std::string(loaded.status().message());
    // Keep the evidence: the next write would replace the file.
    std::string aside = path + ".bad";
    bool kept = std::rename(path.c_str(), aside.c_str()) == 0;
    spdlog::error("snapshot {}: {}; starting with an empty cache{}", path, stats_.load_error,
                  kept ? "; the file is kept as " + aside : "");
  }
}

void Keeper::SetInterval(absl::Duration interval) {
  timer_.SetPeriod(enabled() ? interval : absl::ZeroDuration());
}

void Keeper::WriteAsync(Done done) {
  if (!enabled()) {
    TimedWrite off;
    off.result = absl::FailedPreconditionError("no snapshot path configured (--snapshot PATH or [snapshot] path)");
    if (done) done(off);
    return;
  }
  if (closed_) {
    if (done) done(Closing());
    return;
  }
  if (done) waiters_.push_back(std::move(done));
  if (running_) return;
  running_ = true;
  auto* work = new Work();
  work->req.data = work;
  work->self = this;
  work->path = stats_.path;
  int rc = uv_queue_work(
      loop_, &work->req,
      [](uv_work_t* req) {
        auto* w = static_cast<Work*>(req->data);
        w->write = WriteTimed(*w->self->cache_, w->path);
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<Work> w(static_cast<Work*>(req->data));
        Keeper* self = w->self;
        self->running_ = false;
        Guarded("snapshot", [&] {
          if (status == UV_ECANCELED) w->write.result = absl::CancelledError("snapshot write cancelled");
          self->Finish(w->write);
        });
      });
  if (rc != 0) {
    running_ = false;
    delete work;
    TimedWrite failed;
    failed.result = UvStatus(rc, "uv_queue_work");
    Finish(failed);
  }
}

void Keeper::Finish(const TimedWrite& write) {
  Record(write);
  std::vector<Done> waiters;
  waiters.swap(waiters_);
  for (auto& done : waiters) done(write);
}

TimedWrite Keeper::WriteNow() {
  TimedWrite w = WriteTimed(*cache_, stats_.path);
  Record(w);
  return w;
}

void Keeper::Close() {
  if (closed_) return;
  closed_ = true;
  timer_.Close();
  std::vector<Done> waiters;
  waiters.swap(waiters_);
  for (auto& done : waiters) done(Closing());
}

void Keeper::Record(const TimedWrite& write) {
  const absl::StatusOr<WriteResult>& result = write.result;
  if (result.ok()) {
    ++stats_.writes;
    stats_.last_write = SteadyNow();
    stats_.last_entries = result->entries;
    stats_.last_bytes = result->bytes;
    stats_.last_write_seconds = absl::ToDoubleSeconds(write.took);
    if (!stats_.last_error.empty()) spdlog::info("snapshot {}: writing again", stats_.path);
    stats_.last_error.clear();
    spdlog::debug("snapshot {}: {} entries, {} bytes in {:.3f} s", stats_.path, result->entries, result->bytes,
                  stats_.last_write_seconds);
  } else {
    ++stats_.write_failures;
    std::string err(result.status().message());
    // One line per distinct error, not one per interval while the disk stays full.
    if (err != stats_.last_error) spdlog::error("snapshot write failed, the previous snapshot is kept: {}", err);
    stats_.last_error = err;
  }
}

}  // namespace nodedns::snapshot

#ifndef NODEDNS_LIB_SNAPSHOT_STATS_H_
#define NODEDNS_LIB_SNAPSHOT_STATS_H_

// What the snapshot keeper reports (dnsctl stats, /metrics): a plain value,
// so that the control code renders it without linking the keeper.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "lib/common/metrics.h"

namespace nodedns::snapshot {

// Every absl::Time here is on the steady clock.
struct KeeperStats {
  std::string path;  // "" when snapshots are off
  absl::Time last_write = absl::InfinitePast();  // last successful write
  uint64_t writes = 0;
  uint64_t write_failures = 0;
  std::string last_error;  // of the last failed write, "" if the last one succeeded
  size_t last_entries = 0;
  size_t last_bytes = 0;
  double last_write_seconds = 0;
  // At start-up.
  size_t loaded_entries = 0;
  size_t load_expired = 0;
  double load_seconds = 0;
  std::string load_error;  // "" when loaded or when there was no file
};

// The keeper's numbers for the exported set (group "snapshot"; JSON
// "snapshot": {...}, Prometheus nodedns_snapshot_*). `now` is on the steady
// clock.
inline void AppendKeeperMetrics(const KeeperStats& s, absl::Time now, MetricSet* out) {
  auto d = [](auto v) { return static_cast<double>(v); };
  out->Gauge("snapshot", "enabled", "1 if the persistent cache is on", s.path.empty() ? 0 : 1);
  out->Gauge("snapshot", "age_seconds", "Seconds since the last successful snapshot write (-1: none yet)",
             s.last_write == absl::InfinitePast() ? -1 : absl::ToDoubleSeconds(now - s.last_write));
  out->Counter("snapshot", "writes", "Successful snapshot writes", d(s.writes));
  out->Counter("snapshot", "write_failures", "Failed snapshot writes (the previous snapshot was kept)",
               d(s.write_failures));
  out->Gauge("snapshot", "last_entries", "Entries in the last snapshot written", d(s.last_entries),
             "snapshot_entries");
  out->Gauge("snapshot", "last_bytes", "Bytes of the last snapshot written", d(s.last_bytes));
  out->Gauge("snapshot", "last_write_seconds", "Seconds the last snapshot write took", s.last_write_seconds);
  out->Gauge("snapshot", "loaded_entries", "Entries loaded from the snapshot at start-up", d(s.loaded_entries));
  out->Gauge("snapshot", "load_expired", "Entries of the snapshot past their stale limit at start-up, not loaded",
             d(s.load_expired));
  out->Gauge("snapshot", "load_seconds", "Seconds the snapshot load took at start-up", s.load_seconds);
}

}  // namespace nodedns::snapshot

#endif  // NODEDNS_LIB_SNAPSHOT_STATS_H_

#ifndef NODEDNS_LIB_SNAPSHOT_STATS_H_
#define NODEDNS_LIB_SNAPSHOT_STATS_H_

// What the snapshot keeper reports (dnsctl stats, /metrics): a plain value,
// so that the control code renders it without linking the keeper.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

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

}  // namespace nodedns::snapshot

#endif  // NODEDNS_LIB_SNAPSHOT_STATS_H_

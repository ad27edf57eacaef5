#ifndef NODEDNS_LIB_SNAPSHOT_SNAPSHOT_H_
#define NODEDNS_LIB_SNAPSHOT_SNAPSHOT_H_

// The persistent cache: every cache entry with its absolute deadlines, so
// that after a restart an entry is fresh or stale exactly as it was.
//
// File format (all integers big-endian):
//   "NDNSSNAP"  magic, 8 octets
//   u32 version (kVersion), u32 reserved (0)
//   i64 written_at (wall clock, Unix ms), u64 entry count
//   version 2 only: 16 octets boot id, i64 steady clock at write (ms)
//   entries: u16 key_len, key, u8 kind, i64 inserted_ms, i64 expires_ms,
//            i64 stale_until_ms (wall clock, Unix ms), u16 num_ttls,
//            u16 ttl_offsets[num_ttls], u16 image_len, image
//   u32 CRC-32 (zlib) of everything before it
//
// Time: the cache keeps its deadlines on the steady clock (CLOCK_BOOTTIME),
// which means nothing to another boot. The file holds wall-clock deadlines,
// converted once at write. At load they are converted back once: exactly,
// through the steady clock reading stored beside them, when the file was
// written during this boot (a restart, a takeover: a wall-clock step between
// write and load changes nothing); through the wall clock otherwise (after a
// reboot, the only clock the two boots share). Version 1 files (nodedns 0.1)
// are read, always through the wall clock.
// A file is written whole to PATH.tmp.PID, fsync'ed and renamed over PATH (then
// the directory is fsync'ed), so PATH is always either the previous snapshot
// or the new one.
//
// Threading: Write reads the cache through Cache::ForEach (thread-safe);
// Load inserts into it. Neither keeps state.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"

namespace nodedns::snapshot {

inline constexpr char kMagic[8] = {'N', 'D', 'N', 'S', 'S', 'N', 'A', 'P'};
inline constexpr uint32_t kVersion = 2;

// "Now" as the snapshot sees it: both clocks read at one moment, and the boot
// the steady clock counts from.
struct Moment {
  TimeBase time;
  std::string boot_id;  // 16 octets; empty if unknown (then never "this boot")
  // The system clocks and /proc/sys/kernel/random/boot_id.
  static Moment Now();
};

// The file's bytes for the cache's current content.
std::string Serialize(const cache::Cache& cache, const Moment& now, size_t* entries = nullptr);

struct WriteResult {
  size_t entries = 0;
  size_t bytes = 0;
};
// Writes atomically; on any error PATH is left as it was and PATH.tmp.PID removed.
absl::StatusOr<WriteResult> Write(const cache::Cache& cache, const std::string& path, const Moment& now);

struct LoadResult {
  absl::Time written_at;  // wall clock
  bool same_boot = false;  // deadlines converted through the steady clock
  size_t entries_in_file = 0;
  size_t loaded = 0;
  size_t expired = 0;   // past their (current) max_stale: dropped
  size_t rejected = 0;  // refused by the cache (too large, not cacheable)
};

// The current limit for stale serving of a name (its zone's max_stale), from
// the lowercased wire qname.
using MaxStaleFn = absl::FunctionRef<absl::Duration(std::string_view qname)>;

// Checks the whole file (magic, version, length, checksum, every entry's
// bounds, deadlines within a century of the write) before inserting anything:
// a damaged file inserts nothing. Entries keep their deadlines; each may be
// served stale until expiry plus the smaller of its stored allowance and its
// zone's current max_stale.
absl::StatusOr<LoadResult> Parse(std::string_view data, cache::Cache* cache, const Moment& now,
                                 MaxStaleFn max_stale);
// Reads PATH and parses it. NotFound if there is no file.
absl::StatusOr<LoadResult> Load(const std::string& path, cache::Cache* cache, const Moment& now,
                                MaxStaleFn max_stale);

}  // namespace nodedns::snapshot

#endif  // NODEDNS_LIB_SNAPSHOT_SNAPSHOT_H_

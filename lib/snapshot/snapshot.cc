#include "lib/snapshot/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "lib/common/errno_status.h"
#include "lib/dns/constants.h"
#include "lib/dns/query_view.h"

namespace nodedns::snapshot {
namespace {

constexpr size_t kHeaderSizeV1 = 8 + 4 + 4 + 8 + 8;
constexpr size_t kBootIdSize = 16;
constexpr size_t kHeaderSize = kHeaderSizeV1 + kBootIdSize + 8;
constexpr size_t kTrailerSize = 4;
// Deadlines further than this from the write time are damage (and would
// overflow the millisecond arithmetic): no entry lives longer than max_ttl
// (7 days) plus max_stale (7 days).
constexpr int64_t kMaxDeadlineSpanMs = int64_t{100} * 366 * 86400 * 1000;
// Write times before 2000 or after 2200 are damage too.
constexpr int64_t kMinWriteMs = int64_t{946684800} * 1000;
constexpr int64_t kMaxWriteMs = int64_t{7258118400} * 1000;

// "01234567-89ab-cdef-0123-456789abcdef\n" -> 16 octets; "" if unreadable.
std::string ReadBootId() {
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char text[64];
  ssize_t n = read(fd, text, sizeof(text));
  close(fd);
  std::string id;
  for (ssize_t i = 0; i + 1 < n && id.size() < kBootIdSize; ++i) {
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    if (text[i] == '-') continue;
    int hi = hex(text[i]), lo = hex(text[i + 1]);
    if (hi < 0 || lo < 0) return "";
    id.push_back(static_cast<char>(hi << 4 | lo));
    ++i;
  }
  return id.size() == kBootIdSize ? id : "";
}

void Put(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t Crc(std::string_view data) {
  return static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

absl::Status ErrnoError(const std::string& what) { return ErrnoStatus(errno, what); }

// A bounds-checked big-endian reader.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Get(uint64_t* v, int bytes) {
    if (remaining() < static_cast<size_t>(bytes)) return false;
    uint64_t x = 0;
    for (int i = 0; i < bytes; ++i) x = (x << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += bytes;
    *v = x;
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (remaining() < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct ParsedEntry {
  std::string_view key;
  dns::AnswerKind kind;
  int64_t inserted_ms, expires_ms, stale_until_ms;
  std::string_view ttls;  // num_ttls big-endian u16
  std::string_view image;
};

absl::Status Damaged(const std::string& why) {
  return absl::DataLossError("snapshot is damaged: " + why);
}

}  // namespace

Moment Moment::Now() {
  return Moment{TimeBase::Now(*SystemSteadyClock::Get(), *SystemWallClock::Get()), ReadBootId()};
}

std::string Serialize(const cache::Cache& cache, const Moment& now, size_t* entries) {
  std::string out;
  out.reserve(kHeaderSize + cache.bytes());
  out.append(kMagic, sizeof(kMagic));
  Put(out, kVersion, 4);
  Put(out, 0, 4);
  Put(out, static_cast<uint64_t>(absl::ToUnixMillis(now.time.wall)), 8);
  size_t count_at = out.size();
  Put(out, 0, 8);  // patched below
  std::string boot_id = now.boot_id.size() == kBootIdSize ? now.boot_id : std::string(kBootIdSize, '\0');
  out.append(boot_id);
  Put(out, static_cast<uint64_t>(absl::ToUnixMillis(now.time.steady)), 8);
  uint64_t count = 0;
  auto wall_ms = [&now](absl::Time steady) {
    return static_cast<uint64_t>(absl::ToUnixMillis(now.time.ToWall(steady)));
  };
  cache.ForEach([&](const cache::EntryView& e) {
    Put(out, e.key.size(), 2);
    out.append(e.key);
    Put(out, static_cast<uint8_t>(e.kind), 1);
    Put(out, wall_ms(e.inserted_at), 8);
    Put(out, wall_ms(e.expires_at), 8);
    Put(out, wall_ms(e.stale_until), 8);
    Put(out, e.ttl_offsets.size(), 2);
    for (uint16_t off : e.ttl_offsets) Put(out, off, 2);
    Put(out, e.image.size(), 2);
    out.append(reinterpret_cast<const char*>(e.image.data()), e.image.size());
    ++count;
  });
  for (int i = 0; i < 8; ++i) out[count_at + i] = static_cast<char>((count >> (8 * (7 - i))) & 0xff);
  Put(out, Crc(out), 4);
  if (entries) *entries = count;
  return out;
}

absl::StatusOr<WriteResult> Write(const cache::Cache& cache, const std::string& path, const Moment& now) {
  WriteResult result;
  std::string data = Serialize(cache, now, &result.entries);
  result.bytes = data.size();
  // Per process: during a handover two nodedns may write the same snapshot.
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return ErrnoError("cannot create " + tmp);
  auto fail = [&](const std::string& what) {
    absl::Status st = ErrnoError(what);
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    return st;
  };
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("cannot fsync " + tmp);
  int rc = close(fd);
  fd = -1;
  if (rc != 0) return fail("cannot close " + tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp + " to " + path);
  // The rename itself must reach the disk.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  if (int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return result;
}

absl::StatusOr<LoadResult> Parse(std::string_view data, cache::Cache* cache, const Moment& now,
                                 MaxStaleFn max_stale) {
  if (data.size() < sizeof(kMagic) || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a nodedns snapshot (no NDNSSNAP magic)");
  }
  Reader header(data.substr(sizeof(kMagic)));
  uint64_t version = 0, reserved = 0, written_ms = 0, count = 0;
  if (!header.Get(&version, 4)) return Damaged("truncated header");
  if (version != kVersion && version != 1) {
    return absl::FailedPreconditionError("snapshot version " + std::to_string(version) + " is not supported (this " +
                                         "nodedns reads version " + std::to_string(kVersion) + ")");
  }
  size_t header_size = version == 1 ? kHeaderSizeV1 : kHeaderSize;
  std::string_view boot_id;
  uint64_t steady_ms = 0;
  if (data.size() < header_size + kTrailerSize || !header.Get(&reserved, 4) || !header.Get(&written_ms, 8) ||
      !header.Get(&count, 8) || (version != 1 && (!header.Bytes(kBootIdSize, &boot_id) || !header.Get(&steady_ms, 8)))) {
    return Damaged("truncated header");
  }
  std::string_view body = data.substr(0, data.size() - kTrailerSize);
  uint64_t stored_crc = 0;
  Reader trailer(data.substr(data.size() - kTrailerSize));
  trailer.Get(&stored_crc, 4);
  if (Crc(body) != stored_crc) return Damaged("checksum mismatch (truncated or corrupt)");

  // Every entry is checked before any is inserted.
  if (static_cast<int64_t>(written_ms) < kMinWriteMs || static_cast<int64_t>(written_ms) > kMaxWriteMs) {
    return Damaged("write time out of range");
  }
  Reader r(body.substr(header_size));
  std::vector<ParsedEntry> entries;
  entries.reserve(std::min<uint64_t>(count, body.size() / 40));
  for (uint64_t i = 0; i < count; ++i) {
    ParsedEntry e;
    uint64_t key_len, kind, ins, exp, stale, num_ttls, image_len;
    std::string where = "entry " + std::to_string(i) + ": ";
    if (!r.Get(&key_len, 2) || !r.Bytes(key_len, &e.key) || !r.Get(&kind, 1) || !r.Get(&ins, 8) ||
        !r.Get(&exp, 8) || !r.Get(&stale, 8) || !r.Get(&num_ttls, 2) || !r.Bytes(num_ttls * 2, &e.ttls) ||
        !r.Get(&image_len, 2) || !r.Bytes(image_len, &e.image)) {
      return Damaged(where + "truncated");
    }
    if (key_len <= dns::kCacheKeySuffix || kind > static_cast<uint8_t>(dns::AnswerKind::kServFail) ||
        num_ttls > dns::kMaxImageRecords || image_len < dns::kHeaderSize + key_len - 1) {
      return Damaged(where + "bad key, kind or sizes");
    }
    // The image's question is the key's name (both lowercased).
    std::string_view qname = dns::CacheKeyQname(e.key);
    if (std::memcmp(e.image.data() + dns::kHeaderSize, qname.data(), qname.size()) != 0) {
      return Damaged(where + "image does not match its key");
    }
    for (uint64_t t = 0; t < num_ttls; ++t) {
      size_t off = (static_cast<uint8_t>(e.ttls[2 * t]) << 8) | static_cast<uint8_t>(e.ttls[2 * t + 1]);
      if (off < dns::kHeaderSize || off + 4 > image_len) return Damaged(where + "TTL offset out of range");
    }
    e.kind = static_cast<dns::AnswerKind>(kind);
    e.inserted_ms = static_cast<int64_t>(ins);
    e.expires_ms = static_cast<int64_t>(exp);
    e.stale_until_ms = static_cast<int64_t>(stale);
    auto near_write = [written_ms](int64_t t) {
      int64_t w = static_cast<int64_t>(written_ms);
      return t > w - kMaxDeadlineSpanMs && t < w + kMaxDeadlineSpanMs;
    };
    if (!near_write(e.inserted_ms) || !near_write(e.expires_ms) || !near_write(e.stale_until_ms)) {
      return Damaged(where + "deadline out of range");
    }
    if (e.expires_ms < e.inserted_ms || e.stale_until_ms < e.expires_ms) return Damaged(where + "deadlines out of order");
    entries.push_back(e);
  }
  if (r.remaining() != 0) return Damaged("trailing data after the last entry");

  LoadResult result;
  result.written_at = absl::FromUnixMillis(static_cast<int64_t>(written_ms));
  // Written during this boot: the steady clock's reading at write converts
  // exactly, whatever the wall clock did since. Otherwise the wall clock.
  result.same_boot = version != 1 && now.boot_id.size() == kBootIdSize && boot_id == now.boot_id &&
                     boot_id.find_first_not_of('\0') != std::string_view::npos;
  TimeBase base = result.same_boot
                      ? TimeBase{absl::FromUnixMillis(static_cast<int64_t>(steady_ms)), result.written_at}
                      : now.time;
  absl::Time steady_now = now.time.steady;
  result.entries_in_file = entries.size();
  dns::CacheImage image;
  image.cacheable = true;
  // Last first: the file lists each shard in the cache's keeping order
  // (stale-serving, main tier, probation; newest first in each), so what was
  // last in line for eviction before the restart is last in line after it.
  // Loaded entries start in probation (access counts are not saved).
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const ParsedEntry& e = *it;
    absl::Time expires = base.ToSteady(absl::FromUnixMillis(e.expires_ms));
    absl::Duration allowance = std::min(absl::Milliseconds(e.stale_until_ms - e.expires_ms),
                                        max_stale(dns::CacheKeyQname(e.key)));
    if (steady_now >= expires + allowance && steady_now >= expires) {
      ++result.expired;
      continue;
    }
    image.kind = e.kind;
    image.wire.assign(e.image.begin(), e.image.end());
    image.ttl_offsets.resize(e.ttls.size() / 2);
    for (size_t t = 0; t < image.ttl_offsets.size(); ++t) {
      image.ttl_offsets[t] =
          static_cast<uint16_t>((static_cast<uint8_t>(e.ttls[2 * t]) << 8) | static_cast<uint8_t>(e.ttls[2 * t + 1]));
    }
    if (cache->InsertWithDeadlines(e.key, image, base.ToSteady(absl::FromUnixMillis(e.inserted_ms)), expires,
                                   steady_now, allowance)) {
      ++result.loaded;
    } else {
      ++result.rejected;
    }
  }
  return result;
}

absl::StatusOr<LoadResult> Load(const std::string& path, cache::Cache* cache, const Moment& now,
                                MaxStaleFn max_stale) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open " + path);
  std::string data;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0) data.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = ErrnoError("cannot read " + path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  auto r = Parse(data, cache, now, max_stale);
  if (!r.ok()) return absl::Status(r.status().code(), path + ": " + std::string(r.status().message()));
  return r;
}

}  // namespace nodedns::snapshot

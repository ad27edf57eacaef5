// LD_PRELOAD probe for bench/soak.sh: a thread in the measured process writes
// glibc's heap figures (mallinfo2, all arenas) to $NODEDNS_MALLOC_PROBE every
// $NODEDNS_MALLOC_PROBE_SECONDS (default 10) seconds, one line each:
//   <unix seconds> in_use=<bytes> free=<bytes> mmapped=<bytes> arena=<bytes> top_pad=<bytes>
// in_use: bytes handed out by malloc and not freed (uordblks + hblkhd), what
// the program holds; free: bytes free inside the arenas (fordblks), which RSS
// may still count; arena: bytes the arenas took from the kernel with sbrk/mmap
// (arena), top_pad: the releasable top of the main arena (keepcost).
// RSS growing while in_use stays flat is the allocator keeping freed memory
// (churn, fragmentation); in_use growing with no owner is a leak.
// Changes nothing in the process but that thread and the file; glibc only.

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

void* Probe(void*) {
  const char* path = std::getenv("NODEDNS_MALLOC_PROBE");
  const char* every = std::getenv("NODEDNS_MALLOC_PROBE_SECONDS");
  unsigned seconds = every ? static_cast<unsigned>(std::atoi(every)) : 10;
  if (seconds == 0) seconds = 10;
  FILE* f = std::fopen(path, "a");
  if (f == nullptr) return nullptr;
  for (;;) {
    struct mallinfo2 m = mallinfo2();
    std::fprintf(f, "%lld in_use=%zu free=%zu mmapped=%zu arena=%zu top_pad=%zu\n",
                 static_cast<long long>(std::time(nullptr)), m.uordblks + m.hblkhd, m.fordblks, m.hblkhd, m.arena,
                 m.keepcost);
    std::fflush(f);
    sleep(seconds);
  }
  return nullptr;
}

__attribute__((constructor)) void Start() {
  if (std::getenv("NODEDNS_MALLOC_PROBE") == nullptr) return;
  // Only the process it was meant for, not what that process may start.
  unsetenv("LD_PRELOAD");
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, Probe, nullptr);
  pthread_attr_destroy(&attr);
}

}  // namespace

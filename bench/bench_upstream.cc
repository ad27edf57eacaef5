// Upstream for bench/: answers every A query with 192.0.2.1 (TTL from
// argv[1], default 86400) on a free 127.0.0.1 port, which it prints on
// stdout; runs until SIGTERM or SIGINT.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "tests/support/fake_upstream.h"

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the server thread inherits the mask
  auto up = nodedns::testing::FakeUpstream::Start();
  if (!up) return 1;
  up->set_ttl(argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 86400);
  std::printf("%d\n", up->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "bench_upstream: %d queries\n", up->queries());
  return 0;
}

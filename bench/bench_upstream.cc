// Upstream for bench/: answers every A query with 192.0.2.1 (TTL from
// argv[1], default 86400) on a free 127.0.0.1 port, which it prints on
// stdout; names of argv[2] labels or more (if given and not 0) are NXDOMAIN.
// argv[3] "quiet": queries are counted but not logged per name (a long run,
// bench/soak.sh, would grow this process's memory otherwise).
// On SIGUSR1 it prints the number of queries received so far (a line
// "queries N"); SIGUSR2 toggles a blackhole (no answers at all, as an
// unreachable server) and prints "mode drop" or "mode answer"; runs until
// SIGTERM or SIGINT.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/support/fake_upstream.h"

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the server thread inherits the mask
  auto up = nodedns::testing::FakeUpstream::Start();
  if (!up) return 1;
  up->set_ttl(argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 86400);
  if (argc > 2) up->set_nxdomain_from_labels(std::atoi(argv[2]));
  if (argc > 3 && std::strcmp(argv[3], "quiet") == 0) up->set_log_queries(false);
  std::printf("%d\n", up->port());
  std::fflush(stdout);
  using Mode = nodedns::testing::FakeUpstream::Mode;
  bool dropping = false;
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && (sig == SIGUSR1 || sig == SIGUSR2)) {
    if (sig == SIGUSR1) {
      std::printf("queries %d\n", up->queries());
    } else {
      dropping = !dropping;
      up->set_mode(dropping ? Mode::kDrop : Mode::kAnswer);
      std::printf("mode %s\n", dropping ? "drop" : "answer");
    }
    std::fflush(stdout);
  }
  std::fprintf(stderr, "bench_upstream: %d queries\n", up->queries());
  return 0;
}

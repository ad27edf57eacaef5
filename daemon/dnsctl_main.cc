// dnsctl: the operator's command-line client for nodedns. Its commands
// (stats, dump, flush, reload, ...) talk to the daemon's control socket; this
// version knows only --version and --help.

#include <cstring>
#include <iostream>

namespace {

void Usage(std::ostream& out) {
  out << "usage: dnsctl [--version] [--help] COMMAND\n"
         "\n"
         "Commands talking to a running nodedns (stats, upstreams, dump, flush,\n"
         "reload, snapshot, health) are not available in this version.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::cout << "dnsctl " << NODEDNS_VERSION << "\n";
    return 0;
  }
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    Usage(std::cout);
    return 0;
  }
  if (argc >= 2) std::cerr << "dnsctl: unknown command '" << argv[1] << "'\n";
  Usage(std::cerr);
  return 2;
}

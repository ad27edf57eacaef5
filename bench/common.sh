# Shared by the bench/ scripts (sourced, not run): build the Release targets
# given as arguments, a scratch directory, processes stopped by PID on exit,
# and free loopback ports.

bench_setup() {  # targets to build...
  bash scripts/deps.sh bench
  # The bench targets are built with the tests (scripts/run.sh turns them off).
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNODEDNS_BUILD_TESTS=ON >/dev/null
  cmake --build build-release --target "$@" >/dev/null
  work=$(mktemp -d /tmp/nodedns-bench-XXXXXX)
  pids=()  # add every process started, by PID; they are stopped on exit
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # a process's utime + stime, in clock ticks
clk_tck=$(getconf CLK_TCK)

free_port() {  # a port free for both UDP and TCP on this machine
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 20000))
    if [ -z "$(ss -Hlnu "sport = :$p")" ] && [ -z "$(ss -Hlnt "sport = :$p")" ]; then echo "$p"; return; fi
  done
  echo "no free port" >&2
  exit 1
}

nodedns_cache_config() {  # port, upstream port: the DEFAULT configuration, with only the listen
  # address, the upstream and the log level given (benchmarks measure what users run)
  cat <<EOC
[server]
listen = ["127.0.0.1:$1"]
[[zone]]
name = "."
servers = ["127.0.0.1:$2"]
[log]
level = "warn"
EOC
}

unbound_server_config() {  # address, port: the server: clause of a one-thread forwarding cache
  cat <<EOC
server:
  interface: $1@$2
  port: $2
  do-ip6: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  chroot: ""
  username: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  qname-minimisation: no
EOC
}

unbound_base_config() {  # port, upstream port: a one-thread forwarding cache on 127.0.0.1
  unbound_server_config 127.0.0.1 "$1"
  cat <<EOC
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$2
EOC
}

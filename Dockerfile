# The nodedns image for the Helm chart (helm/nodedns). Multi-stage, Debian 12
# like the development setup: the build stage compiles with the same Debian
# packages as scripts/deps.sh, the runtime stage holds the two binaries, their
# shared libraries, nftables (for --setup-interface NOTRACK rules) and the
# default config. Build: docker build -t REGISTRY/nodedns:0.1.0 .
# (There is no Docker engine on the development machine; CI does not build it.)

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config libc-ares-dev libuv1-dev libabsl-dev libspdlog-dev libtomlplusplus-dev \
      nlohmann-json3-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY lib lib
COPY daemon daemon
COPY systemd systemd
COPY README.md ./
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DNODEDNS_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
 && cmake --build build \
 && DESTDIR=/out cmake --install build

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libc-ares2 libfmt9 libspdlog1.10 libtomlplusplus3 libuv1 zlib1g nftables \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nodedns \
 && mkdir -p /run/nodedns /var/lib/nodedns && chown nodedns:nodedns /run/nodedns /var/lib/nodedns
COPY --from=build /out/usr/bin/nodedns /out/usr/bin/dnsctl /usr/bin/
COPY --from=build /out/etc/nodedns/nodedns.toml /etc/nodedns/nodedns.toml
# Non-root by default (the embedded config listens on 127.0.0.1:5300). The
# Helm chart runs it as root with every capability dropped but
# NET_BIND_SERVICE (and NET_ADMIN for --setup-interface), since Kubernetes
# cannot give a non-root process capabilities on a read-only image.
USER nodedns
EXPOSE 53/udp 53/tcp 9253/tcp
ENTRYPOINT ["/usr/bin/nodedns"]

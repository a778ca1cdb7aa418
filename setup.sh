#!/usr/bin/env bash
# Installs every build and test dependency from Debian's archive, builds vos and installs it
# (vos on PATH). Run as root, or with sudo available.
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential cmake pkg-config git python3 gzip iproute2 sqlite3
          libzstd-dev liblz4-dev libxxhash-dev libcli11-dev nlohmann-json3-dev libfmt-dev
          libgtest-dev libgmock-dev libbenchmark-dev clang-format clang-tidy
          libvterm-dev              # the screen model of a program's terminal (vos attach)
          postgresql-15         # e2e.real.postgres: postgres --single with System V shared memory
          openjdk-17-jdk-headless   # e2e.real.java: a JVM (threads, hsperfdata flock, NIO)
          tmux vim                  # e2e.real.tmux_daemon, e2e.real.vim
          util-linux-extra)         # fincore, for e2e.cli.page_cache
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_type=${VOS_BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
cmake --build build -j"$(nproc)"
if [ "$(id -u)" -eq 0 ]; then
  cmake --install build --prefix /usr/local >/dev/null
  echo "setup: installed $(command -v vos)"
else
  echo "setup: built build/src/vos (run as root to install it to /usr/local/bin)"
fi

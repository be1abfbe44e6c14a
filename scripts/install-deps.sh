#!/usr/bin/env bash
# Installs everything sluice needs to build and test on Debian 12 (bookworm).
# Idempotent: packages already installed are left alone, and `apt-get update` only runs when
# something is missing. Runs as root, or through sudo when available.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config git clang clang-format clang-tidy libclang-rt-14-dev
  # PostgreSQL: server binaries for test clusters, libpq, pgbench and pg_recvlogical
  libpq-dev postgresql-15 postgresql-client-15 postgresql-contrib
  # libraries
  librocksdb-dev libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev
  libsystemd-dev libhiredis-dev librdkafka-dev libcpp-httplib-dev
  # test and benchmark frameworks
  libgtest-dev libgmock-dev libbenchmark-dev
  # servers and tools used by tests
  redis-server python3 procps
)

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  as_root=()
fi

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for package in "${packages[@]}"; do
  if ! is_installed "$package"; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  if [[ $(id -u) -ne 0 && ${#as_root[@]} -eq 0 ]]; then
    echo "install-deps: missing packages (${missing[*]}) and not root, no sudo" >&2
    exit 1
  fi
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The tests need these on the machine, whatever package ends up providing them.
problems=0
pg_bin=""
while read -r dir; do
  if [[ -x "$dir/initdb" ]]; then pg_bin="$dir"; fi  # sorted by version: the last is newest
done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
if [[ -z "$pg_bin" ]]; then
  echo "install-deps: no PostgreSQL server binaries (initdb) under /usr/lib/postgresql" >&2
  problems=1
fi
for tool in pgbench pg_recvlogical; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "$pg_bin/$tool" ]]; then
    echo "install-deps: $tool not found" >&2
    problems=1
  fi
done
for tool in cmake clang++ clang-format clang-tidy run-clang-tidy redis-server python3 runuser; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
    echo "install-deps: $tool not found" >&2
    problems=1
  fi
done
if ! getent passwd postgres >/dev/null; then
  echo "install-deps: no 'postgres' user (tests run the server as it when root)" >&2
  problems=1
fi
if [[ $problems -ne 0 ]]; then
  exit 1
fi
echo "install-deps: ok (PostgreSQL binaries in $pg_bin)"

#!/usr/bin/env bash
# Installs every build and test dependency of accellm from Debian 12 packages.
# Idempotent: packages already present are skipped, and apt-get runs only when
# something is missing. Run as root (or through sudo).
#
#   deploy/install-deps.sh                  build + test dependencies
#   deploy/install-deps.sh --dry-run        print what would be installed
#   deploy/install-deps.sh --with-chromium  also Debian's chromium, for the report's
#                                           browser test (cli.report_in_a_browser)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libcaf-dev                      # CAF 0.17: core, io, openssl
  capnproto libcapnp-dev          # Cap'n Proto 0.9 compiler and libraries
  libspdlog-dev libfmt-dev        # logging
  libgtest-dev libgmock-dev       # unit tests
  libbenchmark-dev                # bench/
  libcli11-dev                    # command line
  libtomlplusplus-dev             # cluster files
  nlohmann-json3-dev              # JSON output
  libcpp-httplib-dev              # coordinator HTTP endpoint
  libssl-dev                      # CAF's OpenSSL module, Cap'n Proto's config
  iproute2                        # network namespaces for multi-host tests
)

dry_run=no
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=yes ;;
    --with-chromium) packages+=(chromium) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install-deps.sh: installing ${missing[*]}"
[ "$dry_run" = yes ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

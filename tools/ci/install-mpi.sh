#!/usr/bin/env bash
# Installs what the `mpi` cargo feature (crates/mpi, rsmpi) needs: Open MPI from
# Debian's packages (headers, mpicc, mpirun) and clang/libclang for rsmpi's
# bindgen step. Idempotent: does nothing when everything is already there.
# Needs root (or sudo) and apt-get; the default build does not need any of this.
set -euo pipefail

need=()
command -v mpicc >/dev/null 2>&1 || need+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
# bindgen loads libclang at build time; clang gives it its resource headers.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  need+=(libclang-dev)
fi
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-mpi: Open MPI and clang already installed ($(mpirun --version 2>/dev/null | head -n 1))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-mpi: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-mpi: $(mpirun --version 2>/dev/null | head -n 1)"

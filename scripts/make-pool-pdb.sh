#!/usr/bin/env bash
# Rebuild testdata/pdb/pool.pdb: the PDB of a small x86 DLL compiled without debug information,
# so that it holds public symbols only, with decorated names (C++ `?…`, x86 C `_name`,
# `_name@N`, `@name@N`), like Microsoft's public PDBs (see testdata/pdb/pool-x86.cpp). Needs
# Debian's clang and lld (apt-get install clang lld); the tests never need them. The build is
# reproducible (/Brepro, a fixed folder), so the PDB's GUID, which the fixture
# sym-pool-x86.dmp names, stays the same.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=/tmp/heapdiag-pool-pdb  # a fixed folder: object paths end up in the PDB
rm -rf "$tmp" && mkdir -p "$tmp"
cp testdata/pdb/pool-x86.cpp "$tmp/pool.cpp"
(
  cd "$tmp"
  clang --target=i686-pc-windows-msvc -O1 -c pool.cpp -o pool.obj
  lld-link /debug /nodefaultlib /entry:entry /dll /opt:noref /Brepro /pdbaltpath:pool.pdb \
    pool.obj /out:pool.dll /pdb:pool.pdb
)
cp "$tmp/pool.pdb" testdata/pdb/pool.pdb
rm -rf "$tmp"
echo "testdata/pdb/pool.pdb rebuilt"

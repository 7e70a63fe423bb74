#!/usr/bin/env bash
# Rebuild testdata/pdb/ntdll.pdb: a stand-in ntdll whose PDB describes the NT heap structures with
# the member names of the real ntdll.pdb, laid out as a future build might (FrontEndHeap at +0x1A8;
# see testdata/pdb/ntdll-future-x64.c), plus the global RtlpLFHKey. Needs clang and lld. The build
# is reproducible (no paths, no timestamps), so the PDB's GUID, which lld derives from its content
# and the fixture heap-future-x64.dmp names, stays the same.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=/tmp/heapdiag-ntdll-pdb  # a fixed folder: object paths end up in the PDB
rm -rf "$tmp" && mkdir -p "$tmp"
cp testdata/pdb/ntdll-future-x64.c "$tmp/ntdll.c"
(
  cd "$tmp"
  clang --target=x86_64-pc-windows-msvc -g -gcodeview -O0 -fdebug-compilation-dir=. -c ntdll.c -o ntdll.obj
  lld-link /debug /nodefaultlib /entry:entry /dll /opt:noref /Brepro /pdbsourcepath:. /pdbaltpath:ntdll.pdb \
    ntdll.obj /out:ntdll.dll /pdb:ntdll.pdb
)
cp "$tmp/ntdll.pdb" testdata/pdb/ntdll.pdb
rm -rf "$tmp"
echo "testdata/pdb/ntdll.pdb rebuilt"

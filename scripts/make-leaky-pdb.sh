#!/usr/bin/env bash
# Rebuild testdata/sample-symbols/leaky.pdb: the PDB of the bundled sample's program
# (testdata/sample-symbols/leaky.cpp), an x64 executable built with debug information, so that the
# sample's frames read leaky!RequestLog::Append+0x10 [leaky.cpp @ 16]. Needs Debian's clang and
# lld (apt-get install clang lld); the tests never need them. The build is reproducible (/Brepro,
# a fixed folder), so the PDB's GUID, which the sample's leaky.exe names, stays the same. If the
# compiler changes the code, `llvm-objdump -d` the executable and update the return addresses of
# `sample_stacks` in crates/dumpwriter/src/fixtures.rs (and the GUID beside them).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=/tmp/heapdiag-leaky-pdb  # a fixed folder: object paths end up in the PDB
rm -rf "$tmp" && mkdir -p "$tmp"
cp testdata/sample-symbols/leaky.cpp "$tmp/leaky.cpp"
(
  cd "$tmp"
  clang --target=x86_64-pc-windows-msvc -O1 -g -gcodeview -fno-builtin \
    -fdebug-prefix-map="$tmp"="C:\\src\\leaky" -c leaky.cpp -o leaky.obj
  lld-link /debug /nodefaultlib /entry:main /subsystem:console /opt:noref /Brepro \
    /pdbaltpath:leaky.pdb leaky.obj /out:leaky.exe /pdb:leaky.pdb
  llvm-pdbutil dump -summary leaky.pdb | grep -E "GUID|Age"
)
cp "$tmp/leaky.pdb" testdata/sample-symbols/leaky.pdb
rm -rf "$tmp"
echo "testdata/sample-symbols/leaky.pdb rebuilt"

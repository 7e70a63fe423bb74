#!/usr/bin/env bash
# Rebuild testdata/pdb/types-x64.dll, types-x86.dll and their PDBs (types-x64.pdb, types-x86.pdb):
# a small DLL of C++ classes with virtual functions, RTTI and public vtable symbols
# (testdata/pdb/types.cpp; NoRtti from types-nortti.cpp, compiled without RTTI), for the fixtures
# types-win10-x64.dmp and types-win10-x86.dmp, which map the DLL's sections into the dump at its
# preferred base. Needs Debian's clang and lld (apt-get install clang lld); the tests never need
# them. The build is reproducible (/Brepro, a fixed folder), so the GUIDs the DLLs' CodeView records
# hold, and the vtable RVAs the fixtures name, stay the same.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=/tmp/heapdiag-types-pdb  # a fixed folder: object paths end up in the PDB
rm -rf "$tmp" && mkdir -p "$tmp"
cp testdata/pdb/types.cpp testdata/pdb/types-nortti.cpp "$tmp/"
(
  cd "$tmp"
  for arch in x64 x86; do
    target=$([ $arch = x64 ] && echo x86_64 || echo i686)
    clang --target=$target-pc-windows-msvc -O1 -c types.cpp -o types-$arch.obj
    clang --target=$target-pc-windows-msvc -O1 -fno-rtti -c types-nortti.cpp -o nortti-$arch.obj
    lld-link /debug /nodefaultlib /entry:entry /dll /opt:noref /Brepro /pdbaltpath:types-$arch.pdb \
      types-$arch.obj nortti-$arch.obj /out:types-$arch.dll /pdb:types-$arch.pdb
  done
)
for arch in x64 x86; do
  cp "$tmp/types-$arch.dll" "$tmp/types-$arch.pdb" testdata/pdb/
done
rm -rf "$tmp"
echo "testdata/pdb/types-{x64,x86}.{dll,pdb} rebuilt"

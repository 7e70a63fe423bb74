#!/usr/bin/env bash
# Build a large real PDB (about 30 MB: 60,000 functions, 60,000 struct types) with clang and lld,
# for the symbol-loading benchmark: scripts/make-big-pdb.sh OUTDIR  → OUTDIR/big.exe, OUTDIR/big.pdb.
# Needs Debian's clang and lld (apt-get install clang lld); the tests never need them.
set -euo pipefail
out=${1:?usage: make-big-pdb.sh OUTDIR}
mkdir -p "$out/src"
python3 - "$out/src" <<'PY'
import sys
d = sys.argv[1]
files, per = 12, 5000
for k in range(files):
    with open(f"{d}/big{k}.c", "w") as f:
        for i in range(k * per, (k + 1) * per):
            f.write(f"struct s{i} {{ int f{i}; long long g; struct s{i} *self; double d[{i % 7 + 1}]; }};\n")
            f.write(f"long long fn_{i}(struct s{i} *p, long long x) {{ if (!p) return x * {i + 1}; return p->f{i} + p->g + x + {i}; }}\n")
with open(f"{d}/main.c", "w") as f:
    f.write("long long entry(void) { return 0; }\n")
PY
cd "$out/src"
ls ./*.c | xargs -P"$(nproc)" -I{} sh -c 'clang --target=x86_64-pc-windows-msvc -g -gcodeview -O0 -c {} -o "$(basename {} .c).obj"'
lld-link /debug /nodefaultlib /entry:entry /subsystem:console /opt:noref ./*.obj /out:../big.exe /pdb:../big.pdb
rm -f ./*.obj
echo "$out/big.pdb: $(stat -c %s ../big.pdb) bytes"

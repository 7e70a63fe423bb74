// pool.dll: a stand-in for a module whose PDB holds public symbols only, as Microsoft's public
// PDBs do. Built by scripts/make-pool-pdb.sh without debug information, so the PDB lld writes
// has no procedures and no lines, only the decorated names of the publics:
//   ?Instance@Pool@@SAPAU1@XZ  ?Alloc@Pool@@QAEPAXI@Z  _PoolAllocate@4  _pool_malloc
//   @FastAlloc@4  _entry@12  ?grow@?$Vec@H@app@@QAEXI@Z
namespace app {
template <class T> struct Vec {
    T *data;
    unsigned size;
    __attribute__((noinline)) void grow(unsigned n);
};
template <class T> void Vec<T>::grow(unsigned n) { size += n; data = (T *)(unsigned long)(size * sizeof(T)); }
template struct Vec<int>;
}

struct Pool {
    unsigned used;
    __attribute__((noinline)) void *Alloc(unsigned n);
    static Pool *Instance();
};
static Pool the_pool;
__attribute__((noinline)) Pool *Pool::Instance() { return &the_pool; }
void *Pool::Alloc(unsigned n) { used += n; return (void *)(unsigned long)used; }

extern "C" __attribute__((noinline)) void *__stdcall PoolAllocate(unsigned n) { return Pool::Instance()->Alloc(n); }
extern "C" __attribute__((noinline)) void *__cdecl pool_malloc(unsigned n) { return PoolAllocate(n + 8); }
extern "C" __attribute__((noinline)) void *__fastcall FastAlloc(unsigned n) { return pool_malloc(n * 2); }

extern "C" int __stdcall entry(void *, unsigned, void *) {
    app::Vec<int> v = {0, 0};
    v.grow(3);
    return FastAlloc(v.size) != 0;
}

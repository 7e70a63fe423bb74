// types.dll: C++ classes with virtual functions, for heapdiag's type-labelling fixtures.
// Built by scripts/make-types-pdb.sh for x64 and x86 with RTTI (the default of the MSVC ABI),
// except NoRtti, compiled without it (see types-nortti.cpp): its vtable has no complete object
// locator, so only the PDB's public symbol ??_7NoRtti@@6B@ names it.

// The MSVC runtime's type_info vtable, which every RTTI type descriptor points to (the DLL links
// no runtime): a stand-in under its decorated name.
extern "C" const void *const type_info_vftable[1] __asm__("??_7type_info@@6B@") = {nullptr};

struct Widget {
    virtual ~Widget() {}
    virtual int area() { return w * h; }
    int w = 1, h = 2;
};

namespace app {
struct Gadget {
    virtual int id() { return 7; }
    long long serial = 0;
};
template <class T> struct Box {
    virtual T get() { return value; }
    T value{};
};
}

struct Base1 { virtual int one() { return 1; } int a = 0; };
struct Base2 { virtual int two() { return 2; } int b = 0; };
struct Derived : Base1, Base2 {
    int one() override { return 11; }
    int two() override { return 22; }
};

Widget *make_widget();
app::Gadget *make_gadget();
app::Box<int> *make_box();
Derived *make_derived();
void *make_nortti();

Widget *make_widget() { return new Widget; }
app::Gadget *make_gadget() { return new app::Gadget; }
app::Box<int> *make_box() { return new app::Box<int>; }
Derived *make_derived() { return new Derived; }

extern "C" void *__cdecl malloc(unsigned long long);
void *operator new(decltype(sizeof(0)) n) { return malloc(n); }
void operator delete(void *) noexcept {}
void operator delete(void *, decltype(sizeof(0))) noexcept {}

extern "C" int entry() {
    return make_widget()->area() + make_gadget()->id() + make_box()->get() +
           make_derived()->two() + (make_nortti() != nullptr);
}
extern "C" void *__cdecl malloc(unsigned long long n) { static char pool[4096]; static unsigned long long used; used += n; return pool + used - n; }

// NoRtti: compiled without RTTI (-fno-rtti), so its vtable has no complete object locator.
struct NoRtti {
    virtual int value() { return 3; }
    int v = 0;
};
void *operator new(decltype(sizeof(0)) n);
void *make_nortti() { return new NoRtti; }

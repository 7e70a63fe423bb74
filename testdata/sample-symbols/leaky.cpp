// leaky.exe: the bundled sample's program (testdata/sample-win10-x64.dmp). A small service whose
// request log keeps every entry: RequestLog::Append is the leak the sample's report leads to.
// Built by scripts/make-leaky-pdb.sh with debug information, so its PDB has functions and lines.
// The CRT's malloc, linked in statically (/MT): the sample's stacks go on into ntdll's heap code.
static char pool[64];
extern "C" __attribute__((noinline)) void *malloc(unsigned long long n) { return pool + (n & 63); }

static void *alloc(unsigned long long n) { return malloc(n); }

struct RequestLog {
    void **entries;
    unsigned count;
    __attribute__((noinline)) void Append(unsigned long long size);
};

void RequestLog::Append(unsigned long long size) {
    entries[count++] = alloc(size);
}

struct Session {
    RequestLog *log;
    __attribute__((noinline)) void Log(unsigned long long size);
    __attribute__((noinline)) void *NewBuffer(unsigned long long size);
};

void Session::Log(unsigned long long size) { log->Append(size); }

void *Session::NewBuffer(unsigned long long size) { return alloc(size); }

__attribute__((noinline)) void *LoadConfig(unsigned long long size) { return alloc(size); }

static void *volatile kept;

__attribute__((noinline)) void ServeRequests(Session *s, int n) {
    for (int i = 0; i < n; i++) {
        s->Log(256 + i);
        kept = s->NewBuffer(64);
    }
}

int main() {
    static void *entries[1024];
    RequestLog log = {entries, 0};
    Session s = {&log};
    kept = LoadConfig(4096);
    ServeRequests(&s, 100);
    return 0;
}

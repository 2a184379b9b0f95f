/*
 * IRQL tracking, host side (Wine only): per-thread state, findings, patching of
 * drivers' import tables as they load, the two kernel entry points Wine calls
 * drivers through, and `mov cr8` emulation. See README.md.
 */
#include <windows.h>
#include <winternl.h>
#include <string.h>

#include "irql.h"
#include "../wine-verifier/verifier.h"
#include "../wine-lpc/lpc.h"

extern IMAGE_DOS_HEADER __ImageBase;

static DWORD tls = TLS_OUT_OF_INDEXES;
static HANDLE heap;
static const unsigned char *krnl_lo, *krnl_hi;

/* ----- per-thread state -------------------------------------------------------------- */

struct irql_thread *irql_thread(void)
{
    struct irql_thread *t = TlsGetValue(tls);
    if (!t) {
        /* A thread the tracker has not seen: a new system thread or a Wine worker, both
         * at PASSIVE_LEVEL. Never freed (a few hundred bytes per thread). */
        t = HeapAlloc(heap, HEAP_ZERO_MEMORY, sizeof(*t));
        if (!t) {
            static struct irql_thread fallback; /* out of memory: shared, still usable */
            return &fallback;
        }
        TlsSetValue(tls, t);
    }
    return t;
}

void irql_push_lock(struct irql_thread *t, const void *lock, unsigned char old_irql, int kind)
{
    if (t->nlocks == IRQL_MAX_LOCKS) return; /* deeper nesting is not tracked */
    t->locks[t->nlocks].lock = lock;
    t->locks[t->nlocks].old_irql = old_irql;
    t->locks[t->nlocks].kind = (unsigned char)kind;
    t->nlocks++;
}

int irql_holds(const struct irql_thread *t, const void *lock)
{
    int i;
    for (i = t->nlocks - 1; i >= 0; i--)
        if (t->locks[i].lock == lock) return 1;
    return 0;
}

int irql_pop_lock(struct irql_thread *t, const void *lock, struct irql_lock *out)
{
    int i, j;
    for (i = t->nlocks - 1; i >= 0; i--) {
        if (t->locks[i].lock != lock) continue;
        if (out) *out = t->locks[i];
        for (j = i; j + 1 < t->nlocks; j++) t->locks[j] = t->locks[j + 1];
        t->nlocks--;
        return i + 1;
    }
    return 0;
}

#define MAX_TRACKED 64
static struct { const unsigned char *lo, *hi; } tracked[MAX_TRACKED];
static volatile LONG ntracked;

int irql_tracked(const void *addr)
{
    const unsigned char *p = addr;
    LONG i, n = ntracked;
    for (i = 0; i < n; i++)
        if (p >= tracked[i].lo && p < tracked[i].hi) return 1;
    return 0;
}

/* Called under the loader lock (DLL notifications are serialized). A slot is written
 * before the count that publishes it; slots are never reused (an unloaded driver's
 * range stays: a later image at that address is tracked too, or is patched anew). */
static void add_tracked(const unsigned char *base, const IMAGE_NT_HEADERS *nt)
{
    LONG n = ntracked;
    if (irql_tracked(base) || n == MAX_TRACKED) return;
    tracked[n].lo = base;
    tracked[n].hi = base + nt->OptionalHeader.SizeOfImage;
    InterlockedExchange(&ntracked, n + 1);
}

int irql_in_kernel(const void *addr)
{
    const unsigned char *p = addr;
    return p >= krnl_lo && p < krnl_hi;
}

/* ----- findings ---------------------------------------------------------------------- */

struct line { char buf[2048]; unsigned len; };

static void put(struct line *l, const char *s)
{
    while (*s && l->len < sizeof(l->buf) - 3) l->buf[l->len++] = *s++;
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void put_json(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && l->len < sizeof(l->buf) - 9; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            l->buf[l->len++] = '\\';
            l->buf[l->len++] = (char)c;
        } else if (c < 0x20) {
            put(l, "\\u00");
            l->buf[l->len++] = hex[c >> 4];
            l->buf[l->len++] = hex[c & 15];
        } else {
            l->buf[l->len++] = (char)c;
        }
    }
}

static void put_hex(struct line *l, unsigned long long v)
{
    char tmp[19];
    int n = 0;
    tmp[n++] = '0';
    tmp[n++] = 'x';
    if (!v) {
        tmp[n++] = '0';
    } else {
        int shift = 60;
        while (!(v >> shift)) shift -= 4;
        for (; shift >= 0; shift -= 4) tmp[n++] = "0123456789ABCDEF"[(v >> shift) & 15];
    }
    tmp[n] = 0;
    put(l, tmp);
}

static void put_dec(struct line *l, unsigned v)
{
    char tmp[11];
    int n = sizeof(tmp) - 1;
    tmp[n] = 0;
    do tmp[--n] = (char)('0' + v % 10); while (v /= 10);
    put(l, tmp + n);
}

/* Module base name (e.g. "irqltest.sys") and offset of `addr`; "?" when unknown. */
static void module_of(const void *addr, char *name, unsigned size, ULONG_PTR *offset)
{
    HMODULE mod = NULL;
    char path[MAX_PATH];
    const char *base;
    DWORD n;

    strcpy(name, "?");
    *offset = (ULONG_PTR)addr;
    if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCSTR)addr, &mod) || !mod)
        return;
    *offset = (ULONG_PTR)addr - (ULONG_PTR)mod;
    n = GetModuleFileNameA(mod, path, sizeof(path));
    if (!n || n >= sizeof(path)) return;
    base = strrchr(path, '\\');
    base = base ? base + 1 : path;
    if (strlen(base) < size) strcpy(name, base);
}

static int is_own(const void *addr)
{
    HMODULE mod = NULL;
    return GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                              (LPCSTR)addr, &mod) && mod == (HMODULE)&__ImageBase;
}

/* The callers, as module+offset, leaving out the tracker's own frames: the
 * return address alone names the leaf (e.g. a lock guard's drop), not who held it. */
static void put_stack(struct line *l)
{
    void *frames[24];
    USHORT n = RtlCaptureStackBackTrace(1, 24, frames, NULL), i, shown = 0;
    for (i = 0; i < n && shown < 10; i++) {
        char module[64];
        ULONG_PTR offset;
        if (is_own(frames[i])) continue;
        module_of(frames[i], module, sizeof(module), &offset);
        if (!strcmp(module, "?")) continue; /* generated stubs */
        if (shown++) put(l, " ");
        put_json(l, module);
        put(l, "+");
        put_hex(l, offset);
        if (!_stricmp(module, "ntdll.dll")) break; /* the thread's start: below is not a frame */
    }
}

void irql_describe_stack(void *const *frames, unsigned n, char *out, unsigned size)
{
    struct line l;
    unsigned i;
    l.len = 0;
    for (i = 0; i < n && frames[i]; i++) {
        char module[64];
        ULONG_PTR offset;
        if (is_own(frames[i])) continue;
        module_of(frames[i], module, sizeof(module), &offset);
        if (!strcmp(module, "?")) continue;
        put(&l, " ");
        put(&l, module);
        put(&l, "+");
        put_hex(&l, offset);
    }
    l.buf[l.len] = 0;
    lstrcpynA(out, l.buf, (int)size);
}

static void (CDECL *dbg_output)(const char *);
static CRITICAL_SECTION findings_cs;
static WCHAR findings_path[MAX_PATH];

/* (rule, where) pairs seen, to keep a defect hit in a loop to two lines. */
#define SEEN_SLOTS 256
static struct { const char *rule; const void *where; unsigned count; } seen[SEEN_SLOTS];

static unsigned seen_count(const char *rule, const void *where)
{
    unsigned i;
    for (i = 0; i < SEEN_SLOTS; i++) {
        if (!seen[i].rule) {
            seen[i].rule = rule;
            seen[i].where = where;
        }
        if (seen[i].rule == rule && seen[i].where == where) return ++seen[i].count;
    }
    return 1; /* table full: write everything */
}

void irql_finding(unsigned code, unsigned long long p1, unsigned long long p2, unsigned long long p3,
                  unsigned long long p4, const char *rule, const char *routine, const void *where,
                  const char *detail)
{
    struct line l;
    char module[64];
    ULONG_PTR offset;
    unsigned n;
    HANDLE f;
    DWORD written, err = GetLastError();

    /* A driver that tail-calls a tracked routine leaves no return address of its
     * own: charge the dispatch or cancel routine running on this thread. */
    if ((irql_in_kernel(where) || is_own(where)) && irql_thread()->routine) where = irql_thread()->routine;
    /* The line is built outside findings_cs: module names and the stack take the
     * loader lock, which a thread reporting at unload (the loader's notification)
     * already holds while it waits for findings_cs. */
    EnterCriticalSection(&findings_cs);
    n = seen_count(rule, where);
    LeaveCriticalSection(&findings_cs);
    if (n > 2) {
        SetLastError(err);
        return;
    }
    module_of(where, module, sizeof(module), &offset);
    l.len = 0;
    put(&l, "{\"code\":\"");
    put_hex(&l, code);
    put(&l, "\",\"p1\":\"");
    put_hex(&l, p1);
    put(&l, "\",\"p2\":\"");
    put_hex(&l, p2);
    put(&l, "\",\"p3\":\"");
    put_hex(&l, p3);
    put(&l, "\",\"p4\":\"");
    put_hex(&l, p4);
    put(&l, "\",\"rule\":\"");
    put_json(&l, rule);
    put(&l, "\",\"driver\":\"");
    put_json(&l, module);
    put(&l, "\",\"routine\":\"");
    put_json(&l, routine);
    put(&l, "\",\"at\":\"");
    put_json(&l, module);
    put(&l, "+");
    put_hex(&l, offset);
    put(&l, "\",\"irql\":");
    put_dec(&l, irql_thread()->irql);
    put(&l, ",\"tid\":");
    put_dec(&l, GetCurrentThreadId());
    put(&l, ",\"repeat\":");
    put_dec(&l, n);
    put(&l, ",\"stack\":\"");
    put_stack(&l);
    put(&l, "\",\"detail\":\"");
    put_json(&l, detail);
    put(&l, "\"}");
    l.buf[l.len++] = '\n';
    l.buf[l.len] = 0;

    EnterCriticalSection(&findings_cs);
    f = CreateFileW(findings_path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f != INVALID_HANDLE_VALUE) {
        WriteFile(f, l.buf, l.len, &written, NULL);
        CloseHandle(f);
    }
    if (dbg_output) {
        dbg_output("ntcomm-irql: finding: ");
        dbg_output(l.buf);
    }
    LeaveCriticalSection(&findings_cs);
    SetLastError(err);
}

/* ----- import tables ----------------------------------------------------------------- */

/* A stub per Zw import: irql_zw_check(name, return address), then the original, with
 * the four argument registers and the stack as they came (Zw* take no floats). */
#define STUB_SLOT 64
#define STUB_AREA (65536 - 4096)

static void *make_zw_stub(const char *name, void *original)
{
    static unsigned char *page;
    static unsigned used;
    static const unsigned char head[] = {
        0x51, 0x52, 0x41, 0x50, 0x41, 0x51, /* push rcx; push rdx; push r8; push r9 */
        0x48, 0x83, 0xec, 0x28,             /* sub rsp, 0x28 */
        0x48, 0xb9,                         /* movabs rcx, name */
    };
    static const unsigned char mid1[] = { 0x48, 0x8b, 0x54, 0x24, 0x48, 0x48, 0xb8 }; /* mov rdx,[rsp+0x48]; movabs rax, */
    static const unsigned char mid2[] = {
        0xff, 0xd0,                         /* call rax */
        0x48, 0x83, 0xc4, 0x28,             /* add rsp, 0x28 */
        0x41, 0x59, 0x41, 0x58, 0x5a, 0x59, /* pop r9; pop r8; pop rdx; pop rcx */
        0x48, 0xb8,                         /* movabs rax, original */
    };
    /* Unwind data for that prologue (pushes at 1, 2, 4, 6; sub rsp, 0x28 at 10), so
     * that stack traces taken inside irql_zw_check reach the driver's frames. */
    static const unsigned char unwind[] = {
        1, 10, 5, 0,           /* version 1, prologue 10 bytes, 5 codes, no frame register */
        10, 0x42,              /* UWOP_ALLOC_SMALL (0x28 - 8) / 8 = 4 */
        6, 0x90,               /* UWOP_PUSH_NONVOL r9 */
        4, 0x80,               /* UWOP_PUSH_NONVOL r8 */
        2, 0x20,               /* UWOP_PUSH_NONVOL rdx */
        1, 0x10,               /* UWOP_PUSH_NONVOL rcx */
        0, 0,                  /* padding to an even count */
    };
    static RUNTIME_FUNCTION *functions;
    unsigned char *s;
    char *copy;
    ULONG64 v;
    unsigned size = sizeof(head) + 8 + sizeof(mid1) + 8 + sizeof(mid2) + 8 + 2, slot;

    if (!page || used + STUB_SLOT > STUB_AREA) {
        /* Stubs of STUB_SLOT bytes in the first 60 KiB, the unwind data after them. */
        if (!(page = VirtualAlloc(NULL, 65536, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE))) return NULL;
        if (!(functions = HeapAlloc(heap, 0, STUB_AREA / STUB_SLOT * sizeof(*functions)))) return NULL;
        used = 0;
        memcpy(page + STUB_AREA, unwind, sizeof(unwind));
    }
    if (size > STUB_SLOT) return NULL;
    slot = used / STUB_SLOT;
    if (!(copy = HeapAlloc(heap, 0, strlen(name) + 1))) return NULL;
    strcpy(copy, name);
    s = page + used;
    functions[slot].BeginAddress = used;
    functions[slot].EndAddress = used + size;
    functions[slot].UnwindData = STUB_AREA;
    RtlAddFunctionTable(&functions[slot], 1, (DWORD64)(ULONG_PTR)page);
    used += STUB_SLOT;
    memcpy(s, head, sizeof(head));
    s += sizeof(head);
    v = (ULONG64)(ULONG_PTR)copy;
    memcpy(s, &v, 8);
    s += 8;
    memcpy(s, mid1, sizeof(mid1));
    s += sizeof(mid1);
    v = (ULONG64)(ULONG_PTR)irql_zw_check;
    memcpy(s, &v, 8);
    s += 8;
    memcpy(s, mid2, sizeof(mid2));
    s += sizeof(mid2);
    v = (ULONG64)(ULONG_PTR)original;
    memcpy(s, &v, 8);
    s += 8;
    s[0] = 0xff, s[1] = 0xe0; /* jmp rax */
    return s + 2 - size;
}

static const struct irql_hook *find_hook(const char *name)
{
    const struct irql_hook *h;
    for (h = irql_hooks; h->name; h++)
        if (!strcmp(h->name, name)) return h;
    for (h = vf_hooks; h->name; h++)
        if (!strcmp(h->name, name)) return h;
    return NULL;
}

static void write_slot(void **slot, void *value)
{
    DWORD old;
    if (!VirtualProtect(slot, sizeof(*slot), PAGE_READWRITE, &old)) return;
    *slot = value;
    VirtualProtect(slot, sizeof(*slot), old, &old);
}

static int is_builtin(const unsigned char *base)
{
    /* Wine marks its own PE modules in the DOS stub. */
    return !memcmp(base + sizeof(IMAGE_DOS_HEADER), "Wine builtin DLL", 16);
}

/* Points `base`'s imports of tracked routines at the replacements. Every slot must
 * hold what GetProcAddress gives for that name, or it is left alone. */
static void patch_imports(const unsigned char *base, const WCHAR *name)
{
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + ((const IMAGE_DOS_HEADER *)base)->e_lfanew);
    const IMAGE_DATA_DIRECTORY *dir = &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    const IMAGE_IMPORT_DESCRIPTOR *imp;
    unsigned patched = 0, skipped = 0;

    /* ntcomm's fltmgr.sys is not checked, but its devices are registered for the
     * dispatch gate (compat/wine-verifier/unload.c): only those two imports. */
    int devices_only = !_wcsicmp(name, L"fltmgr.sys");

    if (nt->OptionalHeader.Subsystem != IMAGE_SUBSYSTEM_NATIVE || is_builtin(base)) return;
    if (base == (const unsigned char *)&__ImageBase) return;
    if (!dir->VirtualAddress) return;
    if (!devices_only) {
        add_tracked(base, nt);
        vf_read_switch(); /* per driver load: `ntcomm-rig verifier off`, then a restart, applies */
    }
    for (imp = (const IMAGE_IMPORT_DESCRIPTOR *)(base + dir->VirtualAddress); imp->Name; imp++) {
        HMODULE from = GetModuleHandleA((const char *)(base + imp->Name));
        const IMAGE_THUNK_DATA *names = (const IMAGE_THUNK_DATA *)(base + (imp->OriginalFirstThunk ? imp->OriginalFirstThunk : imp->FirstThunk));
        void **slots = (void **)(base + imp->FirstThunk);
        if (!from || !imp->OriginalFirstThunk) continue;
        for (; names->u1.AddressOfData; names++, slots++) {
            const char *fn;
            const struct irql_hook *h;
            void *orig, *repl;
            if (IMAGE_SNAP_BY_ORDINAL(names->u1.Ordinal)) continue;
            fn = (const char *)((const IMAGE_IMPORT_BY_NAME *)(base + names->u1.AddressOfData))->Name;
            if (devices_only && strcmp(fn, "IoCreateDevice") != 0 && strcmp(fn, "IoDeleteDevice") != 0) continue;
            h = find_hook(fn);
            if (!h && strncmp(fn, "Zw", 2) != 0) continue;
            orig = (void *)GetProcAddress(from, fn);
            if (!orig || *slots != orig) {
                skipped++;
                continue;
            }
            if (h) {
                if (h->original && !*h->original) *h->original = orig;
                if (h->original && *h->original != orig) {
                    skipped++; /* another module's export of that name: not ours to call */
                    continue;
                }
                repl = h->replacement;
            } else if (!(repl = make_zw_stub(fn, orig))) {
                skipped++;
                continue;
            }
            write_slot(slots, repl);
            patched++;
        }
    }
    if (dbg_output) {
        char msg[200];
        struct line l;
        int i;
        for (i = 0; name[i] && i < 60; i++) msg[i] = (char)(name[i] < 128 ? name[i] : '?');
        msg[i] = 0;
        l.len = 0;
        put(&l, "ntcomm-irql: tracking ");
        put(&l, msg);
        put(&l, ": ");
        put_dec(&l, patched);
        put(&l, " imports patched, ");
        put_dec(&l, skipped);
        put(&l, " left alone\n");
        l.buf[l.len] = 0;
        dbg_output(l.buf);
    }
}

/* LdrRegisterDllNotification's callback (its data layout, for LOADED). */
struct dll_notification { ULONG flags; const UNICODE_STRING *full, *base_name; void *base; ULONG size; };

static void CALLBACK on_dll(ULONG reason, const struct dll_notification *data, void *ctx)
{
    WCHAR name[64];
    unsigned n;
    (void)ctx;
    if (reason == 2 /* LDR_DLL_NOTIFICATION_REASON_UNLOADED: still mapped */ && data && irql_tracked(data->base)) {
        vf_module_unloading(data->base, (const unsigned char *)data->base + data->size);
        return;
    }
    if (reason != 1 /* LDR_DLL_NOTIFICATION_REASON_LOADED */ || !data || !data->base_name) return;
    n = data->base_name->Length / sizeof(WCHAR);
    if (n >= 64) return;
    memcpy(name, data->base_name->Buffer, n * sizeof(WCHAR));
    name[n] = 0;
    patch_imports(data->base, name);
}

/* ----- mov cr8 ----------------------------------------------------------------------- */

/* mingw's x64 wdm.h reads and writes IRQL with `mov reg, cr8` / `mov cr8, reg`
 * (KeGetCurrentIrql, KeRaiseIrql, KeLowerIrql are inline): privileged in user mode,
 * so they fault. Answer them from the tracked IRQL, before Wine's own handler. */
static LONG CALLBACK cr8_handler(EXCEPTION_POINTERS *ep)
{
    CONTEXT *c = ep->ContextRecord;
    const unsigned char *ip = (const unsigned char *)c->Rip;
    DWORD64 *regs = &c->Rax; /* Rax..R15 are consecutive in CONTEXT, in encoding order */
    unsigned rex, rm, len;

    if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_PRIV_INSTRUCTION &&
        ep->ExceptionRecord->ExceptionCode != EXCEPTION_ACCESS_VIOLATION)
        return EXCEPTION_CONTINUE_SEARCH;
    if (IsBadReadPtr(ip, 4)) return EXCEPTION_CONTINUE_SEARCH;
    rex = ip[0];
    if ((rex & 0xf4) != 0x44 || ip[1] != 0x0f || (ip[2] != 0x20 && ip[2] != 0x22)) return EXCEPTION_CONTINUE_SEARCH;
    if ((ip[3] & 0xf8) != 0xc0) return EXCEPTION_CONTINUE_SEARCH; /* mod 11, reg 0 (+REX.R = cr8) */
    rm = (ip[3] & 7) | ((rex & 1) << 3);
    len = 4;
    if (ip[2] == 0x20) {
        regs[rm] = irql_thread()->irql;
    } else {
        struct irql_thread *t = irql_thread();
        unsigned char to = (unsigned char)(regs[rm] & 15);
        t->irql = to;
    }
    c->Rip += len;
    return EXCEPTION_CONTINUE_EXECUTION;
}

/* ----- install ----------------------------------------------------------------------- */

static int check_head(const unsigned char *p, const unsigned char *head, unsigned n)
{
    return p && !ntcomm_is_jump(p) && !memcmp(p, head, n);
}

int ntcomm_irql_install(void)
{
    static LONG installed;
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    const char *(CDECL *version)(void);
    NTSTATUS (WINAPI *reg)(ULONG, void *, void *, void **);
    void *cookie;
    const IMAGE_NT_HEADERS *nt;
    unsigned char *call, *cancel;
    /* Wine 8.0's IoCallDriver and IoCancelIrp start with these bytes (push/sub/mov):
     * replaced whole (entry jump), since Wine calls them from inside ntoskrnl. */
    static const unsigned char call_head[] = { 0x41, 0x54, 0x55, 0x57, 0x56, 0x53, 0x48, 0x83, 0xec, 0x40 };
    static const unsigned char cancel_head[] = { 0x53, 0x48, 0x83, 0xec, 0x40, 0x48, 0x89, 0xcb };
    WCHAR dir[MAX_PATH];
    UINT n;

    if (InterlockedExchange(&installed, 1)) return 1;
    if (!ntdll || !(krnl_lo = (const unsigned char *)GetModuleHandleW(L"ntoskrnl.exe"))) return 0;
    version = (const char *(CDECL *)(void))(void *)GetProcAddress(ntdll, "wine_get_version");
    if (!version || strncmp(version(), "8.", 2) != 0) return 1; /* elsewhere: nothing tracked */
    heap = GetProcessHeap();
    InitializeCriticalSection(&findings_cs);
    dbg_output = (void (CDECL *)(const char *))(void *)GetProcAddress(ntdll, "__wine_dbg_output");
    nt = (const IMAGE_NT_HEADERS *)(krnl_lo + ((const IMAGE_DOS_HEADER *)krnl_lo)->e_lfanew);
    krnl_hi = krnl_lo + nt->OptionalHeader.SizeOfImage;
    n = GetSystemWindowsDirectoryW(dir, MAX_PATH);
    if (!n || n > MAX_PATH - 40) return 0;
    wcscpy(findings_path, dir);
    wcscat(findings_path, L"\\temp\\ntcomm-findings.jsonl");
    if ((tls = TlsAlloc()) == TLS_OUT_OF_INDEXES) return 0;
    vf_read_switch();

    irql_orig_IoAcquireCancelSpinLock = (void *)GetProcAddress((HMODULE)krnl_lo, "IoAcquireCancelSpinLock");
    irql_orig_IoReleaseCancelSpinLock = (void *)GetProcAddress((HMODULE)krnl_lo, "IoReleaseCancelSpinLock");
    call = (unsigned char *)(void *)GetProcAddress((HMODULE)krnl_lo, "IoCallDriver");
    cancel = (unsigned char *)(void *)GetProcAddress((HMODULE)krnl_lo, "IoCancelIrp");
    if (!irql_orig_IoAcquireCancelSpinLock || !irql_orig_IoReleaseCancelSpinLock) return 0;
    if (!check_head(call, call_head, sizeof(call_head)) || !check_head(cancel, cancel_head, sizeof(cancel_head))) {
        if (dbg_output) dbg_output("ntcomm-irql: IoCallDriver/IoCancelIrp are not Wine 8.0's: IRQL not tracked\n");
        return 1;
    }
    reg = (NTSTATUS (WINAPI *)(ULONG, void *, void *, void **))(void *)GetProcAddress(ntdll, "LdrRegisterDllNotification");
    if (!reg || reg(0, (void *)on_dll, NULL, &cookie) != 0) return 0;
    if (!AddVectoredExceptionHandler(1, cr8_handler)) return 0;
    if (!ntcomm_write_jump(call, (const void *)irql_IoCallDriver)) return 0;
    if (!ntcomm_write_jump(cancel, (const void *)irql_IoCancelIrp)) return 0;
    if (dbg_output) dbg_output("ntcomm-irql: IRQL tracking on\n");
    return 1;
}

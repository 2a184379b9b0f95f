/*
 * ntcomm_c_client.exe: the C baseline's client. Two modes:
 *
 *   ntcomm_c_client [--driver SYS] bench [--channels A,B] [--iterations N]
 *                   [--warmup N] [--size BYTES] [--max-seconds S]
 *       Times the channels below exactly as `ntcomm bench` times ntcomm's
 *       (tools/ntcomm/src/bench.rs: `timed`, `echo`, `readwrite`) and prints
 *       one JSON document on stdout.
 *   ntcomm_c_client [--driver SYS] [--device PATH] bench ...
 *       The same against another device speaking the same codes, e.g.
 *       --device \\.\NtComm (ntcomm's demo driver): the C client then
 *       measures ntcomm's driver, which separates client from driver costs.
 *   ntcomm_c_client [--driver SYS] test
 *       Checks the driver: echo in all four methods, the read/write queue
 *       (order, short reads, pended reads, cancel, the bound, close), unload.
 *       Exit code 0 when every check passed.
 *
 * With --driver, the driver is installed as service NtCommC (or the service
 * is re-pointed at SYS) and started first.
 *
 * Channels (one timed round trip each, SIZE-byte payload, the reply checked
 * inside the timed region as ntcomm's bench does):
 *   ioctl-buffered   synchronous ECHO_BUFFERED
 *   ioctl-in-direct  synchronous COMPARE_IN_DIRECT
 *   ioctl-direct     synchronous ECHO_OUT_DIRECT
 *   ioctl-neither    synchronous ECHO_NEITHER
 *   readwrite        WriteFile SIZE bytes then ReadFile them back, same handle
 *
 * Timing: QueryPerformanceCounter before and after each round trip (Rust's
 * Instant is QueryPerformanceCounter too); after WARMUP untimed round trips,
 * up to ITERATIONS timed ones, stopping early once MAX-SECONDS have passed.
 * All samples are kept and sorted; percentile q is the sample of rank
 * ceil(q * n), HdrHistogram's definition (ntcomm's histogram rounds to 3
 * significant digits, i.e. within 0.1 %).
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -o ntcomm_c_client.exe client.c
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <winioctl.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntcomm_c.h"

#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED ((DWORD)0xC0000120L)
#endif

/* ----- small helpers -------------------------------------------------------------- */

static LARGE_INTEGER qpc_freq;

static LONGLONG now_ticks(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return t.QuadPart;
}

/* Ticks to nanoseconds, as Rust's std does (no overflow for any realistic span). */
static ULONGLONG ticks_ns(LONGLONG ticks)
{
    ULONGLONG t = (ULONGLONG)ticks, f = (ULONGLONG)qpc_freq.QuadPart;
    return (t / f) * 1000000000ULL + (t % f) * 1000000000ULL / f;
}

/* The same bytes as ntcomm's `pattern(len, seed)` (tools/ntcomm/src/demo.rs). */
static void pattern(unsigned char *p, size_t len, unsigned char seed)
{
    size_t i;
    for (i = 0; i < len; i++)
        p[i] = (unsigned char)((unsigned char)((unsigned char)i * 31u + seed) ^ (unsigned char)(i >> 8));
}

/* The device the bench opens: the C driver's, or another one speaking the same codes. */
static const WCHAR *device_path = NTCOMM_C_USER_PATH;

static HANDLE open_device(BOOL overlapped)
{
    return CreateFileW(device_path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                       OPEN_EXISTING, overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);
}

/* ----- the service ---------------------------------------------------------------- */

static DWORD wait_state(SC_HANDLE svc, DWORD pending, SERVICE_STATUS *st)
{
    DWORD i;
    for (i = 0; i < 1000; i++) {
        if (!QueryServiceStatus(svc, st))
            return GetLastError();
        if (st->dwCurrentState != pending)
            return 0;
        Sleep(10);
    }
    return ERROR_TIMEOUT;
}

static DWORD stop_service(SC_HANDLE svc)
{
    SERVICE_STATUS st;
    DWORD e;
    if (!ControlService(svc, SERVICE_CONTROL_STOP, &st)) {
        e = GetLastError();
        if (e == ERROR_SERVICE_NOT_ACTIVE)
            return 0;
        if (e != ERROR_SERVICE_CANNOT_ACCEPT_CTRL)
            return e;
    }
    e = wait_state(svc, SERVICE_STOP_PENDING, &st);
    if (e)
        return e;
    return st.dwCurrentState == SERVICE_STOPPED ? 0 : ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
}

/* Installs (or re-points) service NtCommC at `sys` and starts it. Prints why on failure. */
static BOOL ensure_driver(const char *sys)
{
    WCHAR wsys[MAX_PATH], full[MAX_PATH];
    SC_HANDLE scm, svc;
    SERVICE_STATUS st;
    DWORD e;
    BOOL ok = FALSE;

    if (!MultiByteToWideChar(CP_ACP, 0, sys, -1, wsys, MAX_PATH) || !GetFullPathNameW(wsys, MAX_PATH, full, NULL)) {
        fprintf(stderr, "ntcomm_c_client: bad driver path %s\n", sys);
        return FALSE;
    }
    if (GetFileAttributesW(full) == INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "ntcomm_c_client: driver image %s not found\n", sys);
        return FALSE;
    }
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
    if (!scm) {
        fprintf(stderr, "ntcomm_c_client: OpenSCManagerW: error %lu\n", GetLastError());
        return FALSE;
    }
    svc = CreateServiceW(scm, NTCOMM_C_SERVICE_NAME, L"ntcomm C baseline driver",
                         SERVICE_START | SERVICE_STOP | SERVICE_QUERY_STATUS, SERVICE_KERNEL_DRIVER,
                         SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, full, NULL, NULL, NULL, NULL, NULL);
    if (!svc && GetLastError() == ERROR_SERVICE_EXISTS) {
        union { QUERY_SERVICE_CONFIGW cfg; unsigned char raw[8192]; } buf;
        DWORD need;
        svc = OpenServiceW(scm, NTCOMM_C_SERVICE_NAME,
                           SERVICE_START | SERVICE_STOP | SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG | SERVICE_CHANGE_CONFIG);
        if (!svc) {
            fprintf(stderr, "ntcomm_c_client: OpenServiceW: error %lu\n", GetLastError());
            goto out;
        }
        if (!QueryServiceConfigW(svc, &buf.cfg, sizeof(buf), &need)) {
            fprintf(stderr, "ntcomm_c_client: QueryServiceConfigW: error %lu\n", GetLastError());
            goto out;
        }
        if (!buf.cfg.lpBinaryPathName || _wcsicmp(buf.cfg.lpBinaryPathName, full) != 0) {
            /* Another image (e.g. another checkout's): stop it and point the service here. */
            if ((e = stop_service(svc)) != 0) {
                fprintf(stderr, "ntcomm_c_client: stopping NtCommC to re-point it: error %lu\n", e);
                goto out;
            }
            if (!ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, full, NULL, NULL,
                                      NULL, NULL, NULL, NULL)) {
                fprintf(stderr, "ntcomm_c_client: ChangeServiceConfigW: error %lu\n", GetLastError());
                goto out;
            }
        }
    }
    if (!svc) {
        fprintf(stderr, "ntcomm_c_client: CreateServiceW: error %lu\n", GetLastError());
        goto out;
    }
    if (!StartServiceW(svc, 0, NULL) && (e = GetLastError()) != ERROR_SERVICE_ALREADY_RUNNING) {
        fprintf(stderr, "ntcomm_c_client: StartServiceW NtCommC: error %lu\n", e);
        goto out;
    }
    if ((e = wait_state(svc, SERVICE_START_PENDING, &st)) != 0 || st.dwCurrentState != SERVICE_RUNNING) {
        fprintf(stderr, "ntcomm_c_client: NtCommC did not reach RUNNING (state %lu, error %lu, exit code %lu)\n",
                st.dwCurrentState, e, st.dwWin32ExitCode);
        goto out;
    }
    ok = TRUE;
out:
    if (svc)
        CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return ok;
}

/* ----- bench ---------------------------------------------------------------------- */

typedef struct {
    DWORD iterations, warmup, size;
    double max_seconds;
} OPTIONS;

typedef struct {
    ULONGLONG *ns;  /* one sample per timed round trip */
    DWORD n;
    BOOL capped;
    double elapsed_s;
    char error[256];
} MEASURED;

/* One round trip; returns FALSE and fills `err` on a failure or a wrong reply. */
typedef BOOL (*OP)(void *ctx, char *err, size_t errlen);

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ntcomm's `check_reply`. */
static BOOL check_reply(const unsigned char *payload, DWORD size, DWORD n, const unsigned char *out, char *err,
                        size_t errlen)
{
    DWORD i;
    if (n != size) {
        fail(err, errlen, "reply of %lu bytes, sent %lu", n, size);
        return FALSE;
    }
    if (memcmp(out, payload, n) != 0) {
        for (i = 0; i < n && out[i] == payload[i]; i++)
            ;
        fail(err, errlen, "reply differs at byte %lu: got 0x%02x, sent 0x%02x", i, out[i], payload[i]);
        return FALSE;
    }
    return TRUE;
}

/* ntcomm's `timed`: warm-up, then timed round trips until `iterations` or the cap. */
static void timed(const OPTIONS *o, OP op, void *ctx, MEASURED *m)
{
    LONGLONG start, t, end, cap = (LONGLONG)(o->max_seconds * (double)qpc_freq.QuadPart);
    DWORD i;
    char err[200];

    m->n = 0;
    m->capped = FALSE;
    m->error[0] = 0;
    for (i = 0; i < o->warmup; i++) {
        if (!op(ctx, err, sizeof err)) {
            snprintf(m->error, sizeof m->error, "warm-up round trip %lu: %s", i, err);
            return;
        }
    }
    start = now_ticks();
    while (m->n < o->iterations) {
        t = now_ticks();
        if (!op(ctx, err, sizeof err)) {
            snprintf(m->error, sizeof m->error, "round trip %lu: %s", m->n, err);
            return;
        }
        end = now_ticks();
        m->ns[m->n++] = ticks_ns(end - t);
        if (end - start >= cap && m->n < o->iterations) {
            m->capped = TRUE;
            break;
        }
    }
    m->elapsed_s = (double)ticks_ns(now_ticks() - start) / 1e9;
}

typedef struct {
    HANDLE dev;
    DWORD code, size;
    unsigned char *payload, *out;
} ECHO;

/* An echo's output is poisoned (the driver writes it); METHOD_IN_DIRECT's second buffer
 * is read by the driver, never written, so it gets the payload: then one check (n == size,
 * out == payload) serves all four methods. */
static void second_buffer(DWORD code, const unsigned char *payload, unsigned char *out, DWORD size)
{
    if ((code & 3) == METHOD_IN_DIRECT)
        memcpy(out, payload, size);
    else
        memset(out, 0xEE, size);
}

static BOOL echo_op(void *ctx, char *err, size_t errlen)
{
    ECHO *e = ctx;
    DWORD n = 0;
    second_buffer(e->code, e->payload, e->out, e->size);
    if (!DeviceIoControl(e->dev, e->code, e->payload, e->size, e->out, e->size, &n, NULL)) {
        fail(err, errlen, "DeviceIoControl 0x%08lx: error %lu", e->code, GetLastError());
        return FALSE;
    }
    return check_reply(e->payload, e->size, n, e->out, err, errlen);
}

static BOOL readwrite_op(void *ctx, char *err, size_t errlen)
{
    ECHO *e = ctx;
    DWORD w = 0, n = 0;
    if (!WriteFile(e->dev, e->payload, e->size, &w, NULL)) {
        fail(err, errlen, "WriteFile: error %lu", GetLastError());
        return FALSE;
    }
    if (w != e->size) {
        fail(err, errlen, "WriteFile took %lu of %lu bytes", w, e->size);
        return FALSE;
    }
    memset(e->out, 0xEE, e->size);
    if (!ReadFile(e->dev, e->out, e->size, &n, NULL)) {
        fail(err, errlen, "ReadFile: error %lu", GetLastError());
        return FALSE;
    }
    return check_reply(e->payload, e->size, n, e->out, err, errlen);
}

static const struct {
    const char *name;
    DWORD code; /* 0: readwrite */
    const char *round_trip;
} CHANNELS[] = {
    {"ioctl-buffered", NTCOMM_C_IOCTL_ECHO_BUFFERED, "synchronous ECHO_BUFFERED (METHOD_BUFFERED) of SIZE bytes"},
    {"ioctl-in-direct", NTCOMM_C_IOCTL_COMPARE_IN_DIRECT, "synchronous COMPARE_IN_DIRECT (METHOD_IN_DIRECT) of SIZE bytes"},
    {"ioctl-direct", NTCOMM_C_IOCTL_ECHO_OUT_DIRECT, "synchronous ECHO_OUT_DIRECT (METHOD_OUT_DIRECT) of SIZE bytes"},
    {"ioctl-neither", NTCOMM_C_IOCTL_ECHO_NEITHER, "synchronous ECHO_NEITHER (METHOD_NEITHER) of SIZE bytes"},
    {"readwrite", 0, "WriteFile SIZE bytes then ReadFile them back, same handle"},
};
#define NCHANNELS (sizeof CHANNELS / sizeof CHANNELS[0])

static int cmp_u64(const void *a, const void *b)
{
    ULONGLONG x = *(const ULONGLONG *)a, y = *(const ULONGLONG *)b;
    return x < y ? -1 : x > y;
}

/* Sample of rank ceil(q * n) (1-based), as HdrHistogram's value_at_quantile. */
static double quantile_us(const ULONGLONG *sorted, DWORD n, double q)
{
    double r = q * (double)n;
    DWORD rank = (DWORD)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* Runs channel `c`, prints its JSON object; returns FALSE if it failed. */
static BOOL bench_channel(size_t c, const OPTIONS *o, BOOL first)
{
    MEASURED m;
    ECHO e;
    BOOL ok;
    DWORD i;

    memset(&m, 0, sizeof m);
    memset(&e, 0, sizeof e);
    m.ns = malloc(sizeof(ULONGLONG) * (o->iterations ? o->iterations : 1));
    e.size = o->size;
    e.code = CHANNELS[c].code;
    e.payload = malloc(o->size + 1);
    e.out = malloc(o->size + 1);
    if (!m.ns || !e.payload || !e.out) {
        snprintf(m.error, sizeof m.error, "out of memory");
        goto report;
    }
    pattern(e.payload, o->size, CHANNELS[c].code ? 0x21 : 0x42);
    if (o->size > (CHANNELS[c].code ? NTCOMM_C_MAX_ECHO : NTCOMM_C_MAX_MESSAGE)) {
        snprintf(m.error, sizeof m.error, "SIZE %lu exceeds the limit %d", o->size, NTCOMM_C_MAX_ECHO);
        goto report;
    }
    e.dev = open_device(FALSE);
    if (e.dev == INVALID_HANDLE_VALUE) {
        snprintf(m.error, sizeof m.error, "CreateFileW %ls: error %lu", device_path, GetLastError());
        goto report;
    }
    if (!CHANNELS[c].code) {
        /* Messages left by someone else would be read instead of ours. */
        ULONG queued = 0;
        DWORD n;
        unsigned char *drain = malloc(NTCOMM_C_MAX_MESSAGE);
        if (!drain) {
            snprintf(m.error, sizeof m.error, "out of memory");
            goto report;
        }
        /* Another driver (--device) may not know QUEUED: then nothing is drained. */
        if (!DeviceIoControl(e.dev, NTCOMM_C_IOCTL_QUEUED, NULL, 0, &queued, sizeof queued, &n, NULL))
            queued = 0;
        for (i = 0; i < queued; i++)
            ReadFile(e.dev, drain, NTCOMM_C_MAX_MESSAGE, &n, NULL);
        free(drain);
    }
    timed(o, CHANNELS[c].code ? echo_op : readwrite_op, &e, &m);
    CloseHandle(e.dev);

report:
    ok = m.error[0] == 0 && m.n > 0;
    if (!first)
        printf(",\n");
    printf("    {\"name\": ");
    json_string(CHANNELS[c].name);
    printf(", \"round_trip\": ");
    json_string(CHANNELS[c].round_trip);
    printf(", \"status\": \"%s\", \"error\": ", ok ? "ok" : "failed");
    if (ok)
        printf("null");
    else
        json_string(m.error[0] ? m.error : "no samples");
    printf(", \"payload_bytes\": %lu, \"iterations\": %lu, \"stopped_at_time_cap\": %s, \"elapsed_s\": %.6f",
           o->size, ok ? m.n : 0, m.capped ? "true" : "false", ok ? m.elapsed_s : 0.0);
    if (ok) {
        double sum = 0;
        qsort(m.ns, m.n, sizeof m.ns[0], cmp_u64);
        for (i = 0; i < m.n; i++)
            sum += (double)m.ns[i];
        printf(", \"ops_per_s\": %.3f, \"latency_us\": {\"min\": %.3f, \"mean\": %.3f, \"p50\": %.3f, \"p99\": %.3f, "
               "\"p99_9\": %.3f, \"max\": %.3f}}",
               m.elapsed_s > 0 ? m.n / m.elapsed_s : 0.0, m.ns[0] / 1000.0, sum / m.n / 1000.0,
               quantile_us(m.ns, m.n, 0.5), quantile_us(m.ns, m.n, 0.99), quantile_us(m.ns, m.n, 0.999),
               m.ns[m.n - 1] / 1000.0);
    } else {
        printf(", \"ops_per_s\": 0, \"latency_us\": null}");
    }
    fflush(stdout);
    free(m.ns);
    free(e.payload);
    free(e.out);
    return ok;
}

static int bench(const OPTIONS *o, const char *channels)
{
    char list[512];
    size_t c;
    BOOL first = TRUE, ok = TRUE;
    char *tok, *save = NULL;

    if (strlen(channels) >= sizeof list) {
        fprintf(stderr, "ntcomm_c_client: --channels too long\n");
        return 2;
    }
    /* Validate all names first: no output unless every one is known. */
    strcpy(list, channels);
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        for (c = 0; c < NCHANNELS && strcmp(CHANNELS[c].name, tok) != 0; c++)
            ;
        if (c == NCHANNELS) {
            fprintf(stderr, "ntcomm_c_client: unknown channel %s\n", tok);
            return 2;
        }
    }
    printf("{\n  \"client\": \"ntcomm-c-baseline\",\n  \"qpc_frequency\": %lld,\n", qpc_freq.QuadPart);
    printf("  \"options\": {\"iterations\": %lu, \"warmup\": %lu, \"size\": %lu, \"max_seconds\": %g},\n",
           o->iterations, o->warmup, o->size, o->max_seconds);
    printf("  \"channels\": [\n");
    strcpy(list, channels);
    save = NULL;
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        for (c = 0; strcmp(CHANNELS[c].name, tok) != 0; c++)
            ;
        ok &= bench_channel(c, o, first);
        first = FALSE;
    }
    printf("\n  ],\n  \"ok\": %s\n}\n", ok ? "true" : "false");
    return ok ? 0 : 1;
}

/* ----- test ----------------------------------------------------------------------- */

static int failures;

static void check(BOOL cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", cond ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!cond)
        failures++;
}

static DWORD last_error_of(BOOL ok)
{
    return ok ? 0 : GetLastError();
}

static void test_echo(HANDLE dev)
{
    static const DWORD sizes[] = {0, 1, 64, 4096, NTCOMM_C_MAX_ECHO};
    static const struct { DWORD code; const char *name; } methods[] = {
        {NTCOMM_C_IOCTL_ECHO_BUFFERED, "ECHO_BUFFERED"},
        {NTCOMM_C_IOCTL_COMPARE_IN_DIRECT, "COMPARE_IN_DIRECT"},
        {NTCOMM_C_IOCTL_ECHO_OUT_DIRECT, "ECHO_OUT_DIRECT"},
        {NTCOMM_C_IOCTL_ECHO_NEITHER, "ECHO_NEITHER"},
    };
    unsigned char *in = malloc(NTCOMM_C_MAX_ECHO + 1), *out = malloc(NTCOMM_C_MAX_ECHO + 1);
    size_t m, s;
    DWORD n, e;
    BOOL ok;

    for (m = 0; m < 4; m++) {
        for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            DWORD size = sizes[s];
            pattern(in, size, (unsigned char)(0x10 + m));
            memset(out, 0xEE, NTCOMM_C_MAX_ECHO);
            second_buffer(methods[m].code, in, out, size);
            n = 12345;
            ok = DeviceIoControl(dev, methods[m].code, size ? in : NULL, size, size ? out : NULL, size, &n, NULL);
            e = last_error_of(ok);
            check(ok && n == size && memcmp(in, out, size) == 0, "%s of %lu bytes round-trips (error %lu, %lu bytes back)",
                  methods[m].name, size, e, n);
        }
        pattern(in, 64, 1);
        ok = DeviceIoControl(dev, methods[m].code, in, 64, out, 63, &n, NULL);
        e = last_error_of(ok);
        check(!ok && e == ERROR_INSUFFICIENT_BUFFER, "%s with a 63-byte output for 64 bytes fails with 122 (error %lu)",
              methods[m].name, e);
        ok = DeviceIoControl(dev, methods[m].code, in, NTCOMM_C_MAX_ECHO + 1, out, NTCOMM_C_MAX_ECHO + 1, &n, NULL);
        e = last_error_of(ok);
        check(!ok && e == ERROR_INVALID_PARAMETER, "%s of MAX_ECHO + 1 bytes fails with 87 (error %lu)",
              methods[m].name, e);
    }
    ok = DeviceIoControl(dev, 0x8e7c6ffcu, in, 4, out, 4, &n, NULL);
    e = last_error_of(ok);
    check(!ok && e == ERROR_INVALID_FUNCTION, "an unknown IOCTL fails with 1 (error %lu)", e);
    free(in);
    free(out);
}

static ULONG queued(HANDLE dev)
{
    ULONG q = 0xFFFFFFFF;
    DWORD n;
    DeviceIoControl(dev, NTCOMM_C_IOCTL_QUEUED, NULL, 0, &q, sizeof q, &n, NULL);
    return q;
}

/* Waits for an overlapped request; returns its Win32 error (0: success) and the bytes. */
static DWORD finish(HANDLE dev, OVERLAPPED *ov, DWORD *n, DWORD ms)
{
    if (WaitForSingleObject(ov->hEvent, ms) != WAIT_OBJECT_0)
        return WAIT_TIMEOUT;
    return GetOverlappedResult(dev, ov, n, FALSE) ? 0 : GetLastError();
}

static void test_queue(HANDLE dev)
{
    unsigned char msg[3][100], buf[NTCOMM_C_MAX_MESSAGE + 1];
    DWORD i, n, e, busy_error = 0;
    BOOL ok;
    HANDLE ovdev, other;
    OVERLAPPED ov, ov2;
    ULONG q;

    /* Drain what an earlier run may have left. */
    for (q = queued(dev); q > 0 && q != 0xFFFFFFFF; q--)
        ReadFile(dev, buf, sizeof buf, &n, NULL);
    check(queued(dev) == 0, "the queue starts empty");

    /* Order, lengths, a short read. */
    for (i = 0; i < 3; i++) {
        pattern(msg[i], sizeof msg[i], (unsigned char)(0x50 + i));
        ok = WriteFile(dev, msg[i], 10 + 40 * i, &n, NULL);
        check(ok && n == 10 + 40 * i, "WriteFile of %lu bytes queues it", 10 + 40 * i);
    }
    check(queued(dev) == 3, "three messages queued (%lu)", queued(dev));
    ok = ReadFile(dev, buf, 9, &n, NULL);
    e = last_error_of(ok);
    check(!ok && e == ERROR_INSUFFICIENT_BUFFER && queued(dev) == 3,
          "a 9-byte read of a 10-byte message fails with 122 and leaves it queued (error %lu)", e);
    for (i = 0; i < 3; i++) {
        memset(buf, 0xEE, sizeof buf);
        ok = ReadFile(dev, buf, sizeof buf, &n, NULL);
        check(ok && n == 10 + 40 * i && memcmp(buf, msg[i], n) == 0, "ReadFile returns message %lu (%lu bytes)", i, n);
    }
    ok = WriteFile(dev, msg[0], 0, &n, NULL);
    check(ok && n == 0, "a zero-length message is queued");
    ok = ReadFile(dev, buf, sizeof buf, &n, NULL);
    check(ok && n == 0, "and read back empty");
    ok = WriteFile(dev, buf, NTCOMM_C_MAX_MESSAGE + 1, &n, NULL);
    check(!ok && queued(dev) == 0, "a message over MAX_MESSAGE is refused (error %lu)", last_error_of(ok));

    /* A pended read, completed by a write on another handle. */
    ovdev = open_device(TRUE);
    check(ovdev != INVALID_HANDLE_VALUE, "open overlapped");
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    memset(buf, 0xEE, sizeof buf);
    ok = ReadFile(ovdev, buf, sizeof buf, NULL, &ov);
    e = last_error_of(ok);
    check(!ok && e == ERROR_IO_PENDING, "ReadFile on an empty queue pends (error %lu)", e);
    Sleep(20);
    check(WaitForSingleObject(ov.hEvent, 0) == WAIT_TIMEOUT, "and stays pended");
    ok = WriteFile(dev, msg[1], 50, &n, NULL);
    check(ok && n == 50, "WriteFile while a read is pended");
    e = finish(ovdev, &ov, &n, 5000);
    check(e == 0 && n == 50 && memcmp(buf, msg[1], 50) == 0, "the pended read got the message (error %lu, %lu bytes)",
          e, n);
    check(queued(dev) == 0, "and it was not queued as well");

    /* A pended read too small for the message fails; the message is then queued. */
    ResetEvent(ov.hEvent);
    ok = ReadFile(ovdev, buf, 5, NULL, &ov);
    check(!ok && GetLastError() == ERROR_IO_PENDING, "a 5-byte read pends");
    ok = WriteFile(dev, msg[2], 90, &n, NULL);
    e = finish(ovdev, &ov, &n, 5000);
    check(ok && e == ERROR_INSUFFICIENT_BUFFER && queued(dev) == 1,
          "a 90-byte write fails the 5-byte pended read with 122 and is queued (error %lu)", e);
    ok = ReadFile(dev, buf, sizeof buf, &n, NULL);
    check(ok && n == 90 && memcmp(buf, msg[2], 90) == 0, "and read back");

    /* Cancel. */
    ResetEvent(ov.hEvent);
    ok = ReadFile(ovdev, buf, sizeof buf, NULL, &ov);
    check(!ok && GetLastError() == ERROR_IO_PENDING, "ReadFile pends again");
    check(CancelIoEx(ovdev, &ov), "CancelIoEx");
    e = finish(ovdev, &ov, &n, 5000);
    check(e == ERROR_OPERATION_ABORTED, "the cancelled read completes with 995 (error %lu)", e);
    ok = WriteFile(dev, msg[0], 10, &n, NULL);
    check(ok && queued(dev) == 1, "a write after the cancel is queued, not given to the cancelled read");
    ok = ReadFile(dev, buf, sizeof buf, &n, NULL);
    check(ok && n == 10, "and read back");

    /* Two pended reads are served oldest first. */
    other = open_device(TRUE);
    memset(&ov2, 0, sizeof ov2);
    ov2.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    ResetEvent(ov.hEvent);
    ok = ReadFile(ovdev, buf, sizeof buf, NULL, &ov);
    check(!ok && GetLastError() == ERROR_IO_PENDING, "first reader pends");
    {
        unsigned char buf2[200];
        ok = ReadFile(other, buf2, sizeof buf2, NULL, &ov2);
        check(!ok && GetLastError() == ERROR_IO_PENDING, "second reader pends");
        WriteFile(dev, msg[0], 11, &n, NULL);
        WriteFile(dev, msg[1], 22, &n, NULL);
        e = finish(ovdev, &ov, &n, 5000);
        check(e == 0 && n == 11, "the oldest read got the first message (%lu bytes)", n);
        e = finish(other, &ov2, &n, 5000);
        check(e == 0 && n == 22 && memcmp(buf2, msg[1], 22) == 0, "the second read got the second (%lu bytes)", n);
    }

    /* Closing a handle completes its pended read (CLOSE under Wine). */
    ResetEvent(ov2.hEvent);
    ok = ReadFile(other, buf, sizeof buf, NULL, &ov2);
    check(!ok && GetLastError() == ERROR_IO_PENDING, "a read pends on a handle about to close");
    CloseHandle(other);
    check(WaitForSingleObject(ov2.hEvent, 5000) == WAIT_OBJECT_0 && (DWORD)ov2.Internal == STATUS_CANCELLED,
          "closing the handle completes it with STATUS_CANCELLED (status 0x%08lx)", (DWORD)ov2.Internal);
    check(queued(dev) == 0, "queue empty");

    /* The bound. */
    for (i = 0; i < NTCOMM_C_QUEUE_CAPACITY; i++) {
        if (!WriteFile(dev, msg[0], 8, &n, NULL))
            break;
    }
    check(i == NTCOMM_C_QUEUE_CAPACITY, "%d messages fit the queue (%lu did)", NTCOMM_C_QUEUE_CAPACITY, i);
    ok = WriteFile(dev, msg[0], 8, &n, NULL);
    busy_error = last_error_of(ok);
    check(!ok && busy_error == ERROR_BUSY, "one more is refused with 170 (STATUS_DEVICE_BUSY) (error %lu)", busy_error);
    for (i = 0; i < NTCOMM_C_QUEUE_CAPACITY; i++) {
        if (!ReadFile(dev, buf, sizeof buf, &n, NULL) || n != 8)
            break;
    }
    check(i == NTCOMM_C_QUEUE_CAPACITY && queued(dev) == 0, "and all of them read back");

    CloseHandle(ov.hEvent);
    CloseHandle(ov2.hEvent);
    CloseHandle(ovdev);
}

static int test(BOOL stop_after)
{
    HANDLE dev = open_device(FALSE);
    check(dev != INVALID_HANDLE_VALUE, "open %ls (error %lu)", NTCOMM_C_USER_PATH,
          dev == INVALID_HANDLE_VALUE ? GetLastError() : 0);
    if (dev == INVALID_HANDLE_VALUE)
        return 1;
    test_echo(dev);
    test_queue(dev);
    /* A message left queued is freed by unload. */
    { DWORD n; WriteFile(dev, "left", 4, &n, NULL); }
    CloseHandle(dev);
    if (stop_after) {
        SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
        SC_HANDLE svc = scm ? OpenServiceW(scm, NTCOMM_C_SERVICE_NAME, SERVICE_STOP | SERVICE_QUERY_STATUS) : NULL;
        DWORD e = svc ? stop_service(svc) : GetLastError();
        check(e == 0, "the service stops (DriverUnload) (error %lu)", e);
        dev = open_device(FALSE);
        check(dev == INVALID_HANDLE_VALUE, "and the device is gone");
        if (dev != INVALID_HANDLE_VALUE)
            CloseHandle(dev);
        if (svc)
            CloseServiceHandle(svc);
        if (scm)
            CloseServiceHandle(scm);
    }
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}

/* ----- main ----------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: ntcomm_c_client [--driver SYS] [--device PATH] bench [--channels A,B] [--iterations N] [--warmup N]\n"
            "                       [--size BYTES] [--max-seconds S]\n"
            "       ntcomm_c_client [--driver SYS] test\n"
            "channels: ioctl-buffered, ioctl-in-direct, ioctl-direct, ioctl-neither, readwrite (default: all)\n");
}

int main(int argc, char **argv)
{
    OPTIONS o = {20000, 500, 64, 8.0};
    const char *driver = NULL, *channels = "ioctl-buffered,ioctl-in-direct,ioctl-direct,ioctl-neither,readwrite";
    const char *mode = NULL;
    int i;

    QueryPerformanceFrequency(&qpc_freq);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "bench") || !strcmp(a, "test")) {
            mode = a;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--driver"))
            driver = v;
        else if (!strcmp(a, "--device")) {
            static WCHAR path[MAX_PATH];
            if (!MultiByteToWideChar(CP_ACP, 0, v, -1, path, MAX_PATH)) {
                usage();
                return 2;
            }
            device_path = path;
        } else if (!strcmp(a, "--channels"))
            channels = v;
        else if (!strcmp(a, "--iterations"))
            o.iterations = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--warmup"))
            o.warmup = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--size"))
            o.size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--max-seconds"))
            o.max_seconds = strtod(v, NULL);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (!mode || o.iterations == 0 || !(o.max_seconds > 0)) {
        usage();
        return 2;
    }
    if (driver && !ensure_driver(driver))
        return 1;
    if (!strcmp(mode, "test"))
        return test(driver != NULL);
    return bench(&o, channels);
}

/*
 * fltclient: a Filter Manager port client written only against the
 * documented API (<fltuser.h>, -lfltlib), the way existing clients are,
 * to check that ntcomm's Wine fltlib.dll/fltmgr.sys run them unmodified.
 *
 * Against ntcomm's demo driver (its port \NtCommPort and device \\.\NtComm):
 *   1. FilterConnectCommunicationPort(L"\\NtCommPort", context "ntcomm-demo/1")
 *   2. FilterSendMessage of a command; the driver echoes it
 *   3. asks the driver (IOCTL PORT_ASK on \\.\NtComm, from a second thread)
 *      to send N questions, and answers each in a FilterGetMessage /
 *      FilterReplyMessage loop: the question is a demo record (u64 sequence,
 *      payload, checksum), the reply is the sequence and a verdict
 *   4. checks the driver's tally and closes the port with CloseHandle
 * Prints what it did; exits 0 on success.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -Wall -o fltclient.exe fltclient.c -lfltlib
 * Usage: fltclient.exe [N]     (N questions, default 16; 0: connect and send only)
 */
#include <windows.h>
#include <fltuser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PORT_NAME L"\\NtCommPort"
#define CONTEXT "ntcomm-demo/1"
#define DEVICE L"\\\\.\\NtComm"
/* ntcomm_proto::demo::PORT_ASK: function 12 of the customer range (0x800 + 12) */
#define IOCTL_PORT_ASK CTL_CODE(0x8e7c, 0x800 + 12, METHOD_BUFFERED, FILE_WRITE_ACCESS)
#define MAX_QUESTION (16 * 1024)
#define QUESTION_LEN 64

typedef struct {
    ULONG questions, threads, timeout_ms, want_reply, question_len, reserved;
} PORT_ASK;

typedef struct {
    ULONGLONG sent, replied, allowed, denied, bad_replies, timeouts, disconnected, failed;
    ULONGLONG rtt_hist[64]; /* round trips by bucket, see ntcomm_proto::demo::rtt_bucket */
} PORT_TALLY;

typedef struct {
    FILTER_MESSAGE_HEADER header;
    UCHAR body[MAX_QUESTION];
} QUESTION;

/* The reply: header, sequence, verdict. Packed, so that its size is
 * sizeof(FILTER_REPLY_HEADER) + 9 as the FltSendMessage docs recommend. */
#pragma pack(push, 1)
typedef struct {
    FILTER_REPLY_HEADER header;
    ULONGLONG sequence;
    UCHAR verdict;
} ANSWER;
#pragma pack(pop)

/* ntcomm_proto::demo::checksum: FNV-1a style over 8-byte little-endian
 * words, then the trailing bytes, folded to 32 bits. */
static ULONG record_checksum(const UCHAR *p, size_t n)
{
    const ULONGLONG prime = 0x00000100000001b3ull;
    ULONGLONG h = 0xcbf29ce484222325ull;
    while (n >= 8) {
        ULONGLONG w;
        memcpy(&w, p, sizeof w);
        h = (h ^ w) * prime;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *p++) * prime;
    return (ULONG)(h ^ (h >> 32));
}

typedef struct {
    HANDLE device;
    PORT_ASK ask;
    PORT_TALLY tally;
    BOOL ok;
    DWORD error;
} ASKER;

static DWORD WINAPI asker(LPVOID p)
{
    ASKER *a = p;
    DWORD n = 0;
    a->ok = DeviceIoControl(a->device, IOCTL_PORT_ASK, &a->ask, sizeof a->ask, &a->tally, sizeof a->tally, &n, NULL);
    a->error = a->ok ? 0 : GetLastError();
    return 0;
}

int main(int argc, char **argv)
{
    ULONG n = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    HANDLE port = NULL;
    HRESULT hr;
    int failures = 0;

    hr = FilterConnectCommunicationPort(PORT_NAME, 0, CONTEXT, (WORD)strlen(CONTEXT), NULL, &port);
    printf("FilterConnectCommunicationPort(%ls, \"%s\") = 0x%08lx\n", PORT_NAME, CONTEXT, (unsigned long)hr);
    if (FAILED(hr))
        return 1;

    {
        char command[] = "hello from fltclient";
        char out[64] = {0};
        DWORD returned = 0;
        hr = FilterSendMessage(port, command, sizeof command - 1, out, sizeof out, &returned);
        printf("FilterSendMessage(\"%s\") = 0x%08lx, %lu bytes back: \"%.*s\"\n", command,
               (unsigned long)hr, (unsigned long)returned, (int)returned, out);
        if (FAILED(hr) || returned != sizeof command - 1 || memcmp(out, command, returned) != 0) {
            printf("  FAIL: expected the command echoed\n");
            failures++;
        }
    }

    if (n > 0) {
        static QUESTION q;
        ASKER a = {0};
        HANDLE thread;
        ULONG answered = 0, allowed = 0, bad = 0, i;

        a.device = CreateFileW(DEVICE, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (a.device == INVALID_HANDLE_VALUE) {
            printf("CreateFile(%ls) failed: %lu\n", DEVICE, GetLastError());
            CloseHandle(port);
            return 1;
        }
        a.ask.questions = n;
        a.ask.threads = 1;
        a.ask.timeout_ms = 10000;
        a.ask.want_reply = 1;
        a.ask.question_len = QUESTION_LEN;
        thread = CreateThread(NULL, 0, asker, &a, 0, NULL);
        printf("asked the driver for %lu questions\n", (unsigned long)n);

        for (i = 0; i < n; i++) {
            ANSWER answer;
            ULONGLONG seq;
            ULONG sum;
            hr = FilterGetMessage(port, &q.header, sizeof q, NULL);
            if (FAILED(hr)) {
                printf("FilterGetMessage = 0x%08lx after %lu questions\n", (unsigned long)hr, (unsigned long)i);
                failures++;
                break;
            }
            memcpy(&seq, q.body, sizeof seq);
            memcpy(&sum, q.body + QUESTION_LEN - 4, sizeof sum);
            if (sum != record_checksum(q.body, QUESTION_LEN - 4))
                bad++;
            if (q.header.ReplyLength != sizeof(FILTER_REPLY_HEADER) + 9) {
                printf("  question %llu: ReplyLength %lu, expected %lu\n", seq,
                       (unsigned long)q.header.ReplyLength, (unsigned long)(sizeof(FILTER_REPLY_HEADER) + 9));
                bad++;
            }
            answer.header.Status = 0;
            answer.header.MessageId = q.header.MessageId;
            answer.sequence = seq;
            answer.verdict = (UCHAR)(seq % 2);
            allowed += answer.verdict;
            hr = FilterReplyMessage(port, &answer.header, sizeof answer);
            if (FAILED(hr)) {
                printf("FilterReplyMessage(question %llu, id %llu) = 0x%08lx\n", seq, q.header.MessageId,
                       (unsigned long)hr);
                failures++;
                break;
            }
            answered++;
        }
        printf("answered %lu questions (%lu allowed), %lu malformed\n", (unsigned long)answered,
               (unsigned long)allowed, (unsigned long)bad);
        if (bad)
            failures++;

        WaitForSingleObject(thread, INFINITE);
        CloseHandle(thread);
        CloseHandle(a.device);
        if (!a.ok) {
            printf("PORT_ASK failed: %lu\n", (unsigned long)a.error);
            failures++;
        } else {
            printf("driver tally: sent %llu, replied %llu, allowed %llu, denied %llu, bad %llu, timeouts %llu, "
                   "disconnected %llu, failed %llu\n",
                   a.tally.sent, a.tally.replied, a.tally.allowed, a.tally.denied, a.tally.bad_replies,
                   a.tally.timeouts, a.tally.disconnected, a.tally.failed);
            if (a.tally.replied != answered || a.tally.allowed != allowed || a.tally.bad_replies != 0) {
                printf("  FAIL: the driver's tally disagrees\n");
                failures++;
            }
        }
    }

    CloseHandle(port);
    printf("%s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}

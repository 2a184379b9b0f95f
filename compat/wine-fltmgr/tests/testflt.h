/* Shared between testflt.c (the minifilter) and testclient.c. */
#ifndef TESTFLT_H
#define TESTFLT_H

#define TESTFLT_CTL(n) (((0x8e7f) << 16) | ((n) << 2)) /* METHOD_BUFFERED, FILE_ANY_ACCESS */
#define IOCTL_TESTFLT_ASK TESTFLT_CTL(0x801)
#define IOCTL_TESTFLT_STATS TESTFLT_CTL(0x802)
#define IOCTL_TESTFLT_CLOSE_CLIENT TESTFLT_CTL(0x803)

#define ASK_NO_REPLY 1

/* IOCTL_TESTFLT_ASK input, followed by the question. */
struct ask_in {
    LONGLONG timeout; /* FltSendMessage Timeout; 0 = NULL (forever) */
    ULONG reply_cap;  /* *ReplyLength */
    ULONG flags;      /* ASK_NO_REPLY: ReplyBuffer NULL */
};

/* IOCTL_TESTFLT_ASK output, followed by reply_len bytes of reply. */
struct ask_out {
    LONG status; /* what FltSendMessage returned */
    ULONG reply_len;
};

struct stats {
    LONG connects, disconnects, messages, refused, connected;
    ULONG context_len;
    ULONGLONG server_cookie;
    UCHAR context[64];
};

#endif

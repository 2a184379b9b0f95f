/* The rig test driver's client: `rigcli ping N` sends N and expects N + 1;
 * `rigcli crash` asks the driver to crash. Exit code 0 on the expected
 * answer, 1 otherwise. */
#include <windows.h>
#include <winioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rigdrv.h"

int main(int argc, char **argv)
{
    HANDLE dev;
    ULONG value, returned = 0;
    BOOL ok;
    if (argc < 2) {
        fprintf(stderr, "usage: rigcli ping N | crash\n");
        return 2;
    }
    dev = CreateFileA("\\\\.\\NtCommRigTest", GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (dev == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "rigcli: open \\\\.\\NtCommRigTest: error %lu\n", GetLastError());
        return 1;
    }
    if (strcmp(argv[1], "ping") == 0 && argc == 3) {
        value = strtoul(argv[2], NULL, 10);
        ok = DeviceIoControl(dev, IOCTL_RIGDRV_PING, &value, sizeof value, &value, sizeof value, &returned, NULL);
        if (!ok || returned != sizeof value) {
            fprintf(stderr, "rigcli: ping: error %lu\n", GetLastError());
            return 1;
        }
        printf("rigcli: pong %lu\n", value);
        return value == strtoul(argv[2], NULL, 10) + 1 ? 0 : 1;
    }
    if (strcmp(argv[1], "crash") == 0) {
        ULONG_PTR address = 16;
        ok = DeviceIoControl(dev, IOCTL_RIGDRV_CRASH, &address, sizeof address, NULL, 0, &returned, NULL);
        printf("rigcli: crash request returned %d (error %lu)\n", ok, ok ? 0 : GetLastError());
        return 0;
    }
    fprintf(stderr, "rigcli: unknown command %s\n", argv[1]);
    return 2;
}

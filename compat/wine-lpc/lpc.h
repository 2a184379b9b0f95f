/*
 * ntcomm's LPC for Wine (Wine only). See README.md.
 */
#ifndef NTCOMM_WINE_LPC_H
#define NTCOMM_WINE_LPC_H

/*
 * Points this process's ntdll Nt*Port entry points (and NtClose) at the
 * implementations in lpc.c. `in_driver_host` is nonzero inside winedevice.exe:
 * ntoskrnl's NtRequestPort is patched too, and messages are marked as sent from
 * kernel mode. Returns nonzero when every entry point was patched; safe to call
 * more than once; meant for DllMain (it allocates, patches and returns).
 */
int ntcomm_lpc_install(int in_driver_host);

/* Overwrites the first 12 bytes of code at `at` with `movabs rax, target; jmp rax`.
 * Returns nonzero on success. */
int ntcomm_write_jump(void *at, const void *target);

/* Whether the code at `p` already starts with such a jump. */
int ntcomm_is_jump(const void *p);

/* An export to add: its name and the code it stands for. */
struct ntcomm_export {
    const char *name;
    const void *impl;
};

/* Adds named exports (at most 8) to a loaded module's export directory in memory, so
 * that GetProcAddress, and modules whose imports are resolved afterwards, find them.
 * Names the module already exports are left alone; entries with the same `impl`
 * share one address (Nt/Zw aliases). Returns nonzero on success. */
int ntcomm_add_exports(void *module, const struct ntcomm_export *add, int count);

#endif

/* Shared between surfaceflt.c (the minifilter) and surfacetest.c. */
#ifndef SURFACE_H
#define SURFACE_H

#define SURFACE_MAX 48

/* One check the minifilter made: what a routine gave, and what the Wine fltmgr.sys
   documents for it. */
struct surface_result {
    char name[64];
    LONGLONG got;
    LONGLONG want;
};

#endif

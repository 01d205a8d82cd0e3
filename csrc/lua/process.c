/* process.c -- small process helpers for the emulator and receivers
 * (signal flags, pid). To be filled in by the emulator work. */
#include "lwh_lua.h"

void lwh_process_open(lua_State *L)
{
    (void)L;
}

/* http.c -- libcurl transport (to be filled in by the API client work). */
#include "lwh_lua.h"

void lwh_http_open(lua_State *L)
{
    (void)L;
}

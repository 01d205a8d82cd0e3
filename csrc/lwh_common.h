/* lwh_common.h -- the few definitions shared by the Lua-free core
 * (the files in csrc/) and the Lua bindings (csrc/lua/). Internal. */
#ifndef LWH_COMMON_H
#define LWH_COMMON_H

/* Internal symbols stay hidden even when a build does not pass
 * -fvisibility=hidden (LuaRocks' builtin backend): every non-static internal
 * function is declared with LWH_HIDDEN. LWH_EXPORT marks the luaopen_*
 * entry points of the Lua modules. */
#define LWH_HIDDEN __attribute__((visibility("hidden")))
#define LWH_EXPORT __attribute__((visibility("default")))

/* JSON whitespace, which is also what HTTP header trimming and the secret
 * checks treat as space: SP, HTAB, CR, LF. */
static inline int lwh_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

#endif

--- Replacing a file that holds secrets (the secrets file, the emulator's
-- state file): the text goes to a temp file next to it, made owner-only
-- (0600) before any byte is written, then renamed over it, so a reader sees
-- the old file or the new one, never a mix. linqwebhooks.process (chmod) is
-- loaded on first write only.
local M = {}

--- private_file.write(path, text, tmp) -> true | nil, stage, err
-- Writes text .. "\n" to tmp, then renames tmp to path. stage says what
-- failed: "open", "chmod", "write" or "rename"; tmp is removed after any
-- failure but "open".
function M.write(path, text, tmp)
  local f, err = io.open(tmp, "wb")
  if not f then
    return nil, "open", err
  end
  local ok, cerr = require("linqwebhooks.process").chmod(tmp, 384) -- 0600
  if not ok then
    f:close()
    os.remove(tmp)
    return nil, "chmod", cerr
  end
  ok, err = f:write(text, "\n")
  if ok then
    ok, err = f:flush()
  end
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, "write", err
  end
  ok, err = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    return nil, "rename", err
  end
  return true
end

return M

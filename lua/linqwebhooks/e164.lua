--- E.164 phone numbers as Linq's API takes them: "+", a non-zero digit, and
-- 7 to 15 digits in all (no spaces or punctuation). Shared by the client's
-- validation and the emulator so both agree.
local M = {}

--- True when `s` is a string in E.164 form.
function M.valid(s)
  return type(s) == "string" and #s <= 16 and s:match("^%+[1-9]%d%d%d%d%d%d+$") ~= nil
end

M.RULE = "+ and 7 to 15 digits, no spaces"

return M

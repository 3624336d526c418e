-- A module: no description, no callbacks.
local M = {}
function M.row(k, v) return string.format("%-20s %d", k, v) end
return M

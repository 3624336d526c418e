--[[
topprocs_net: the processes that read and wrote the most bytes to the network (fd.type ipv4 or ipv6),
from the trace source's I/O events (data.bytes on an fd of that type), as
sysdig's topprocs_net.
]]--

description = "Shows the processes that read and wrote the most bytes to the network (fd.type ipv4 or ipv6): data.bytes of the capture events on such a descriptor (the trace source's read, write, send, recv, sendfile, copy_file_range, splice...), summed per process (proc.name and proc.pid)."
short_description = "Top processes by R+W net bytes"
category = "Net"
stream = "capture"

args = {
	{name = "filter", description = "a CEL filter; only matching events count", argtype = "filter", optional = true},
	{name = "top_number", description = "how many processes to print (0: all; default 30)", argtype = "int", optional = true},
}

local filter = ""
local top_number = "30"

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	elseif name == "top_number" and tonumber(val) ~= nil and tonumber(val) >= 0 then
		top_number = val
		return true
	end
	return false
end

function on_init()
	local sel = 'fd.type in ["ipv4", "ipv6"]'
	if filter ~= "" then
		sel = sel .. " && (" .. filter .. ")"
	end
	chisel.exec("table_generator", "proc.name,proc.pid", "Process,PID", "data.bytes", "Bytes", sel, top_number, "bytes")
	return true
end

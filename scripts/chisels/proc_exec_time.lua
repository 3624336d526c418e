--[[
proc_exec_time: the processes that ended, with how long they ran.
]]--

description = "Lists the processes that finished running (procexit events with data.duration), with their execution time, longest first, as sysdig's proc_exec_time (without its colours): DURATION) COMMAND LINE. Processes whose start the capture did not see have no duration and are left out."
short_description = "Show process execution time"
category = "Performance"
stream = "capture"

args = {
	{name = "filter", description = "a CEL filter on the procexit events", argtype = "filter", optional = true},
	{name = "top_number", description = "print only the N longest (default 0: all)", argtype = "int", optional = true},
}

local filter = ""
local top = 0
local f = {}
local procs = {}

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	elseif name == "top_number" then
		top = tonumber(val)
		return top ~= nil and top >= 0
	end
	return false
end

function on_init()
	for _, name in ipairs({"proc.name", "proc.cmdline", "data.duration"}) do
		f[name] = chisel.request_field(name)
	end
	local sel = 'evt.type == "procexit"'
	if filter ~= "" then
		sel = sel .. " && (" .. filter .. ")"
	end
	chisel.set_filter(sel)
	return true
end

function on_event()
	local d = evt.field(f["data.duration"])
	if type(d) ~= "number" then
		return true
	end
	local cmd = evt.field(f["proc.cmdline"]) or evt.field(f["proc.name"]) or "<NA>"
	procs[#procs + 1] = {d = d, cmd = cmd, n = #procs}
	return true
end

function on_capture_end()
	-- Longest first; equal durations in the order they ended.
	table.sort(procs, function(a, b)
		if a.d ~= b.d then
			return a.d > b.d
		end
		return a.n < b.n
	end)
	for i, p in ipairs(procs) do
		if top > 0 and i > top then
			break
		end
		print(cairn.format_interval(p.d) .. ") " .. p.cmd)
	end
end

--[[
topprocs_cpu: the processes that used the most CPU, from the res source's
capture.sample events (data.cpu_delta_s, the CPU seconds since the previous
sample), as sysdig's topprocs_cpu: CPU% is the CPU time over the wall time
of the selection (of each interval, live).
]]--

description = "Shows the processes that used the most CPU: data.cpu_delta_s of the res source's capture.sample events, summed per process (proc.name and proc.pid), as a share of the selection's wall time (the time from the first to the last event; each second, live). 100% is one full core."
short_description = "Top processes by CPU usage"
category = "CPU Usage"
stream = "capture"

args = {
	{name = "filter", description = "a CEL filter on the capture.sample events", argtype = "filter", optional = true},
	{name = "top_number", description = "how many processes to print (0: all; default 10)", argtype = "int", optional = true},
}

require "common"

local filter = ""
local fname, fpid, fcpu
local grtable = {}

vizinfo = {
	key_fld = {"proc.name", "proc.pid"},
	key_desc = {"Process", "PID"},
	value_fld = "data.cpu_delta_s",
	value_desc = "CPU%",
	value_units = "timepct",
	top_number = 10,
}

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	elseif name == "top_number" then
		local n = tonumber(val)
		if n == nil or n < 0 then
			return false
		end
		vizinfo.top_number = n
		return true
	end
	return false
end

function on_init()
	fname = chisel.request_field("proc.name")
	fpid = chisel.request_field("proc.pid")
	fcpu = chisel.request_field("data.cpu_delta_s")
	local sel = 'kind == "capture.sample"'
	if filter ~= "" then
		sel = sel .. " && (" .. filter .. ")"
	end
	chisel.set_filter(sel)
	return true
end

function on_capture_start()
	if sysdig.is_live() then
		chisel.set_interval_s(1)
	end
	return true
end

function on_event()
	local cpu = evt.field(fcpu)
	if type(cpu) ~= "number" or cpu <= 0 then
		return true
	end
	local pid = evt.field(fpid)
	if pid == nil then
		return true
	end
	local key = tostring(evt.field(fname) or "<NA>") .. "\001\001" .. tostring(pid)
	-- In ns, the unit of the interval the percentage is taken over.
	grtable[key] = (grtable[key] or 0) + cpu * 1e9
	return true
end

function on_interval(ts_s, ts_ns, delta)
	print_sorted_table(grtable, ts_s, 0, delta, vizinfo)
	grtable = {}
	return true
end

function on_capture_end(ts_s, ts_ns, delta)
	if sysdig.is_live() then
		return true
	end
	print_sorted_table(grtable, ts_s, 0, delta, vizinfo)
	return true
end

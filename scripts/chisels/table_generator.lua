--[[
table_generator: sysdig's multidimensional table generator. Events are
grouped by one or more key fields and a value field is summed per group;
the largest groups are printed at the end (each second when live).
Fields are cairn's CEL names; the value evt.count counts events.
]]--

description = "Given key fields and a value field, groups the events by the keys, sums the value for each group and prints the groups with the largest sums. The value evt.count counts events. Fields are the names of where filters (kind, subject, actor.user, data.KEY, proc.name, ...)."
short_description = "Top groups of events by key fields and a value"
category = "Filter"

args = {
	{name = "keys", description = "comma-separated fields to group by", argtype = "string"},
	{name = "keydescs", description = "comma-separated column titles for the keys", argtype = "string"},
	{name = "value", description = "the numeric field to sum, or evt.count", argtype = "string"},
	{name = "valuedesc", description = "the column title for the value", argtype = "string"},
	{name = "filter", description = "a CEL filter; only matching events count", argtype = "filter", optional = true},
	{name = "top_number", description = "how many rows to print (0: all; default 30)", argtype = "int", optional = true},
	{name = "value_units", description = "how to render values: none, bytes, time or timepct (default none)", argtype = "string", optional = true},
}

require "common"

local grtable = {}
local filter = ""
local count_events = false
local fkeys = {}
local fvalue = nil

vizinfo = {
	key_fld = {},
	key_desc = {},
	value_fld = "",
	value_desc = "",
	value_units = "none",
	top_number = 30,
}

function on_set_arg(name, val)
	if name == "keys" then
		vizinfo.key_fld = split(val, ",")
	elseif name == "keydescs" then
		vizinfo.key_desc = split(val, ",")
	elseif name == "value" then
		vizinfo.value_fld = val
	elseif name == "valuedesc" then
		vizinfo.value_desc = val
	elseif name == "filter" then
		filter = val
	elseif name == "top_number" then
		local n = tonumber(val)
		if n == nil or n < 0 then
			return false
		end
		vizinfo.top_number = n
	elseif name == "value_units" then
		if val ~= "none" and val ~= "bytes" and val ~= "time" and val ~= "timepct" then
			return false
		end
		vizinfo.value_units = val
	else
		return false
	end
	return true
end

function on_init()
	if #vizinfo.key_fld ~= #vizinfo.key_desc then
		print("error: number of entries in keys different from number entries in keydescs")
		return false
	end
	for i, name in ipairs(vizinfo.key_fld) do
		fkeys[i] = chisel.request_field(name)
	end
	if vizinfo.value_fld == "evt.count" then
		count_events = true
	else
		fvalue = chisel.request_field(vizinfo.value_fld)
	end
	if filter ~= "" then
		chisel.set_filter(filter)
	end
	return true
end

function on_capture_start()
	if sysdig.is_live() then
		chisel.set_interval_s(1)
	end
	return true
end

function on_event()
	local key = nil
	for _, fld in ipairs(fkeys) do
		local kv = evt.field(fld)
		if kv == nil then
			return true
		end
		if key == nil then
			key = tostring(kv)
		else
			key = key .. "\001\001" .. tostring(kv)
		end
	end
	local value = 1
	if not count_events then
		value = evt.field(fvalue)
	end
	if type(value) == "number" and value > 0 then
		grtable[key] = (grtable[key] or 0) + value
	end
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

--[[
logs_by: log records counted by the value of one of their fields.
]]--

description = "Counts the log records of the logs stream by the value of one of their fields (level, host, container_name, ...; a dotted path reaches into nested maps), largest counts first. Records without the field count as (none); a container's output line has the fields log and source."
short_description = "Count log records by a field of the record"
category = "Logs"
stream = "logs"

args = {
	{name = "field", description = "the record's field to count by, such as level (record.level)", argtype = "string"},
	{name = "filter", description = "a CEL filter; only matching records count (tag.startsWith(\"app.\"))", argtype = "filter", optional = true},
}

require "common"

local field_name = ""
local filter = ""
local fld = nil
local counts = {}

function on_set_arg(name, val)
	if name == "field" then
		field_name = val:gsub("^record%.", "")
	elseif name == "filter" then
		filter = val
	else
		return false
	end
	return true
end

function on_init()
	fld = chisel.request_field("data.record." .. field_name)
	if filter ~= "" then
		chisel.set_filter(filter)
	end
	return true
end

function on_event()
	local v = evt.field(fld)
	local key
	if v == nil then
		key = "(none)"
	elseif type(v) == "table" then
		key = cairn.json(v)
	else
		key = tostring(v)
	end
	counts[key] = (counts[key] or 0) + 1
	return true
end

function on_capture_end(ts_s, ts_ns, delta)
	print_sorted_table(counts, ts_s, ts_ns, delta,
		{value_desc = "Records", key_desc = {field_name}, value_units = "none", top_number = 0})
	return true
end

--[[
counts_by: events counted by the value of any field.
]]--

description = "Counts events by the value of a field (any where-filter field: kind, subject, actor.user, node, data.KEY, proc.name, fd.name, ...), largest counts first. Events without the field count as (none)."
short_description = "Count events by the value of a field"
category = "Events"
stream = "audit" -- cairn's own: a chisel that declares no stream reads capture, as sysdig's

args = {
	{name = "field", description = "the field to count by, such as actor.user or data.key", argtype = "string"},
	{name = "filter", description = "a CEL filter; only matching events count", argtype = "filter", optional = true},
}

require "common"

local field_name = ""
local filter = ""
local fld = nil
local counts = {}

function on_set_arg(name, val)
	if name == "field" then
		field_name = val
	elseif name == "filter" then
		filter = val
	else
		return false
	end
	return true
end

function on_init()
	fld = chisel.request_field(field_name)
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
		{value_desc = "Count", key_desc = {field_name}, value_units = "none", top_number = 0})
	return true
end

--[[
topkinds: the event kinds seen most.
]]--

description = "Shows the event kinds with the most events, optionally among the events a CEL filter matches."
short_description = "Top event kinds by number of events"
category = "Events"
stream = "audit" -- cairn's own: a chisel that declares no stream reads capture, as sysdig's

args = {
	{name = "filter", description = "a CEL filter; only matching events count", argtype = "filter", optional = true},
	{name = "top_number", description = "how many kinds to print (default 30)", argtype = "int", optional = true},
}

local filter = ""
local top_number = "30"

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	elseif name == "top_number" and tonumber(val) ~= nil then
		top_number = val
		return true
	end
	return false
end

function on_init()
	chisel.exec("table_generator", "kind", "Kind", "evt.count", "Events", filter, top_number, "none")
	return true
end

--[[
toptags: the log tags with the most records in the logs stream (records
of the logs engine and containers' output, tagged container.NAME).
]]--

description = "Shows the tags with the most log records in the logs stream: forward, syslog, HTTP and tailed records and containers' output (container.NAME)."
short_description = "Top log tags by number of records"
category = "Logs"
stream = "logs"

args = {
	{name = "top_number", description = "how many tags to print (default 30)", argtype = "int", optional = true},
}

local top_number = "30"

function on_set_arg(name, val)
	if name == "top_number" and tonumber(val) ~= nil then
		top_number = val
		return true
	end
	return false
end

function on_init()
	chisel.exec("table_generator", "tag", "Tag", "evt.count", "Records", "", top_number, "none")
	return true
end

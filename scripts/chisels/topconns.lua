--[[
topconns: the connections that carried the most bytes, as sysdig's topconns.
]]--

description = "Shows the top network connections by bytes carried (sent plus received), as sysdig's topconns: Bytes, Proto, Conn (client->server). The counts are the conn source's, from the kernel's tcp_info: cumulative over the connection's life, as of its last connect or close event in the selection. A connection between two local processes has a socket at each end; it is counted once (the larger count). UDP sockets carry no counts and are not listed. Live, a table is printed every second for the connections that opened or closed in it."
short_description = "Top network connections by total bytes"
category = "Net"
stream = "capture"

args = {
	{name = "filter", description = "a CEL filter on the connect, accept and close events", argtype = "filter", optional = true},
	{name = "top_number", description = "how many rows to print (0: all; default 30)", argtype = "int", optional = true},
}

require "common"

local filter = ""
local f = {}
local conns = {}
local vizinfo = {
	key_desc = {"Proto", "Conn"},
	value_desc = "Bytes",
	value_units = "bytes",
	top_number = 30,
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
	for _, name in ipairs({"fd.l4proto", "fd.name", "data.bytes_sent", "data.bytes_received"}) do
		f[name] = chisel.request_field(name)
	end
	local sel = 'kind in ["capture.connect", "capture.close"]'
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
	local proto, name = evt.field(f["fd.l4proto"]), evt.field(f["fd.name"])
	if proto == nil or name == nil then
		return true
	end
	local sent = evt.field(f["data.bytes_sent"])
	local recvd = evt.field(f["data.bytes_received"])
	local total = (type(sent) == "number" and sent or 0) + (type(recvd) == "number" and recvd or 0)
	local key = proto .. "\001\001" .. name
	-- The counts are cumulative: the largest seen is the connection's.
	-- Like table_generator, rows without bytes (UDP has no counts) are left out.
	if total > 0 and (conns[key] == nil or total > conns[key]) then
		conns[key] = total
	end
	return true
end

function on_interval(ts_s, ts_ns, delta)
	print_sorted_table(conns, ts_s, 0, delta, vizinfo)
	conns = {}
	return true
end

function on_capture_end(ts_s, ts_ns, delta)
	if sysdig.is_live() then
		return true
	end
	print_sorted_table(conns, ts_s, 0, delta, vizinfo)
	return true
end

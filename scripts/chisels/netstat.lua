--[[
netstat: the connections open at the end of the selection, as netstat -tnp.
]]--

description = "Lists the network connections open at the end of the selection (give until= to see a past moment), as netstat -tnp does: Proto, Local Address, Foreign Address, State (as last seen) and PID/Program name, from the conn source's connect, accept and close events. Connections open when the capture started are listed too (the source reports them at its first poll); a loopback connection has a line for each end."
short_description = "Network connections open at a moment"
category = "Net"
stream = "capture"

args = {
	{name = "filter", description = "a CEL filter: only connections whose connect or accept events match are listed", argtype = "filter", optional = true},
}

local filter = ""
local f = {}
local conns = {}

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	end
	return false
end

function on_init()
	for _, name in ipairs({"kind", "fd.l4proto", "fd.name", "fd.sip", "fd.sport", "fd.cip", "fd.cport", "data.role", "data.state", "proc.pid", "proc.name"}) do
		f[name] = chisel.request_field(name)
	end
	local sel = 'kind == "capture.connect"'
	if filter ~= "" then
		sel = "(" .. sel .. " && (" .. filter .. "))"
	end
	chisel.set_filter(sel .. ' || kind == "capture.close"')
	return true
end

-- endpoint formats an address and port as netstat does ([v6]:port).
local function endpoint(ip, port)
	if string.find(ip, ":", 1, true) then
		ip = "[" .. ip .. "]"
	end
	return ip .. ":" .. tostring(port)
end

function on_event()
	local proto, name = evt.field(f["fd.l4proto"]), evt.field(f["fd.name"])
	if proto == nil or name == nil then
		return true
	end
	local role = evt.field(f["data.role"]) or "connect"
	-- The two ends of a loopback connection share fd.name: the role tells them apart.
	local key = proto .. " " .. name .. " " .. role
	if evt.field(f["kind"]) == "capture.close" then
		conns[key] = nil
		return true
	end
	local server = endpoint(evt.field(f["fd.sip"]) or "?", evt.field(f["fd.sport"]) or 0)
	local client = endpoint(evt.field(f["fd.cip"]) or "?", evt.field(f["fd.cport"]) or 0)
	local c = {proto = proto, localaddr = client, foreign = server, state = evt.field(f["data.state"]) or "-", prog = "-"}
	if role == "accept" then
		c.localaddr, c.foreign = server, client
	end
	local pid = evt.field(f["proc.pid"])
	if pid ~= nil then
		c.prog = tostring(pid) .. "/" .. (evt.field(f["proc.name"]) or "?")
	end
	conns[key] = c
	return true
end

function on_capture_end()
	local list = {}
	for _, c in pairs(conns) do
		list[#list + 1] = c
	end
	table.sort(list, function(a, b)
		if a.proto ~= b.proto then
			return a.proto < b.proto
		end
		if a.localaddr ~= b.localaddr then
			return a.localaddr < b.localaddr
		end
		return a.foreign < b.foreign
	end)
	print(string.format("%-5s %-23s %-23s %-11s %s", "Proto", "Local Address", "Foreign Address", "State", "PID/Program name"))
	for _, c in ipairs(list) do
		print(string.format("%-5s %-23s %-23s %-11s %s", c.proto, c.localaddr, c.foreign, c.state, c.prog))
	end
end

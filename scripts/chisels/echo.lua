--[[
echo: every event, one formatted line each.
]]--

description = "Prints every event as one line: seq, time, kind, subject, then proc and fd for capture events, then the data as key=value pairs in key order."
short_description = "Print events, one formatted line each"
category = "Events"
stream = "audit" -- cairn's own: a chisel that declares no stream reads capture, as sysdig's

args = {
	{name = "filter", description = "a CEL filter; only matching events are printed", argtype = "filter", optional = true},
}

local filter = ""
local f = {}

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	end
	return false
end

function on_init()
	for _, name in ipairs({"seq", "time", "stream", "subject", "proc.name", "proc.pid", "fd.name", "data"}) do
		f[name] = chisel.request_field(name)
	end
	if filter ~= "" then
		chisel.set_filter(filter)
	end
	return true
end

local function render(v)
	if type(v) == "table" then
		return cairn.json(v)
	elseif type(v) == "string" and (v == "" or string.find(v, "[%s\"=]")) then
		return string.format("%q", v)
	end
	return tostring(v)
end

function on_event()
	local subject = evt.field(f.subject)
	if subject == nil or subject == "" then
		subject = "-"
	end
	local line = string.format("%d %s %s %s %s", evt.field(f.seq), evt.field(f.time),
		evt.field(f.stream), evt.get_type(), subject)
	local proc = evt.field(f["proc.name"])
	if proc ~= nil then
		line = line .. " proc=" .. proc .. "(" .. tostring(evt.field(f["proc.pid"])) .. ")"
	end
	local fd = evt.field(f["fd.name"])
	if fd ~= nil then
		line = line .. " fd=" .. render(fd)
	end
	local data = evt.field(f.data)
	if data ~= nil then
		local keys = {}
		for k in pairs(data) do
			keys[#keys + 1] = k
		end
		table.sort(keys)
		for _, k in ipairs(keys) do
			line = line .. " " .. k .. "=" .. render(data[k])
		end
	end
	print(line)
	return true
end

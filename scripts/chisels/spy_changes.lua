--[[
spy_changes: who changed what, one line per change.
]]--

description = "Prints one line per change in the audit stream: time, actor (user or uid, and how they came: socket, etcd, nats, system), kind, subject and a summary of the data. Daemon lifecycle and lease checkpoints are left out."
short_description = "Who changed what, one line per change"
category = "Security"
stream = "audit"

args = {
	{name = "filter", description = "a CEL filter; only matching changes are printed", argtype = "filter", optional = true},
	{name = "width", description = "the most characters of data to print (default 100)", argtype = "int", optional = true},
}

local filter = ""
local width = 100
local f = {}

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	elseif name == "width" and tonumber(val) ~= nil then
		width = tonumber(val)
		return true
	end
	return false
end

function on_init()
	for _, name in ipairs({"time", "actor.user", "actor.uid", "actor.via", "kind", "subject", "data"}) do
		f[name] = chisel.request_field(name)
	end
	local changes = '!kind.startsWith("daemon.") && kind != "lease.checkpoint"'
	if filter ~= "" then
		changes = "(" .. changes .. ") && (" .. filter .. ")"
	end
	chisel.set_filter(changes)
	return true
end

function on_event()
	local who = evt.field(f["actor.user"]) or ("uid=" .. tostring(evt.field(f["actor.uid"])))
	local via = evt.field(f["actor.via"])
	if via ~= nil then
		who = who .. "/" .. via
	end
	local subject = evt.field(f.subject)
	if subject == nil or subject == "" then
		subject = "-"
	end
	local data = evt.field(f.data)
	local line = evt.field(f.time) .. " " .. who .. " " .. evt.field(f.kind) .. " " .. subject
	if data ~= nil then
		local summary = cairn.json(data)
		if #summary > width then
			summary = string.sub(summary, 1, width - 3) .. "..."
		end
		line = line .. " " .. summary
	end
	print(line)
	return true
end

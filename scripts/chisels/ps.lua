--[[
ps: the process table at the end of the selection.
]]--

description = "Prints the process table at the end of the selection, as ps does: PID, PPID, USER and CMD of every process that was cloned or exec'd in the selection and had not exited by its end (give until= to see a past moment). Processes already running when the capture started, and that neither forked nor exec'd since, are not known to it."
short_description = "The process table at a moment"
category = "System State"
stream = "capture"

args = {
	{name = "filter", description = "a CEL filter: only processes whose clone or execve events match are listed", argtype = "filter", optional = true},
}

local filter = ""
local f = {}
local procs = {}

function on_set_arg(name, val)
	if name == "filter" then
		filter = val
		return true
	end
	return false
end

function on_init()
	for _, name in ipairs({"evt.type", "proc.pid", "proc.ppid", "proc.name", "proc.cmdline", "user.name", "user.uid"}) do
		f[name] = chisel.request_field(name)
	end
	local sel = 'evt.type in ["clone", "execve"]'
	if filter ~= "" then
		sel = "(" .. sel .. " && (" .. filter .. "))"
	end
	chisel.set_filter(sel .. ' || evt.type == "procexit"')
	return true
end

function on_event()
	local pid = evt.field(f["proc.pid"])
	if pid == nil then
		return true
	end
	if evt.field(f["evt.type"]) == "procexit" then
		procs[pid] = nil
		return true
	end
	local user = evt.field(f["user.name"])
	if user == nil or user == "" then
		local uid = evt.field(f["user.uid"])
		user = uid ~= nil and tostring(uid) or "?"
	end
	procs[pid] = {
		ppid = evt.field(f["proc.ppid"]) or 0,
		user = user,
		cmd = evt.field(f["proc.cmdline"]) or evt.field(f["proc.name"]) or "?",
	}
	return true
end

function on_capture_end()
	local pids = {}
	for pid in pairs(procs) do
		pids[#pids + 1] = pid
	end
	table.sort(pids)
	print(string.format("%7s %7s %-12s %s", "PID", "PPID", "USER", "CMD"))
	for _, pid in ipairs(pids) do
		local p = procs[pid]
		print(string.format("%7d %7d %-12s %s", pid, p.ppid, p.user, p.cmd))
	end
end

--[[
spy_users: the commands run from interactive shells, as sysdig's spy_users.
]]--

description = "Lists every command run from a shell (bash, sh, dash, zsh, ...): one line per execve whose parent, or an ancestor, is a shell, indented by its depth below the outermost shell. Each line is the shell's pid (a session id), the time, the user and the command line, as sysdig's spy_users prints them. The process tree is built from the clone and execve events of the run, so a shell is recognised once it has run or forked in the selection."
short_description = "Display interactive user activity"
category = "Security"
stream = "capture"

args = {
	{name = "max_depth", description = "the deepest level of the process hierarchy to show below the shell (default: all)", argtype = "int", optional = true},
	{name = "shells", description = "comma-separated names of the processes that count as shells (default: sh,bash,dash,zsh,ksh,mksh,ash,csh,tcsh,fish,busybox)", argtype = "string", optional = true},
}

require "common"

local MAX_ANCESTORS = 16
local max_depth = -1
local shells = {}
for _, s in ipairs({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "csh", "tcsh", "fish", "busybox"}) do
	shells[s] = true
end

local f = {}
local names = {}   -- pid -> proc.name, from the latest exec or clone
local parent = {}  -- pid -> ppid
local session = {} -- pid -> {depth, shell pid} below a shell, or false

function on_set_arg(name, val)
	if name == "max_depth" then
		max_depth = tonumber(val)
		return max_depth ~= nil
	elseif name == "shells" then
		shells = {}
		for _, s in ipairs(split(val, ",")) do
			if s ~= "" then
				shells[s] = true
			end
		end
		return true
	end
	return false
end

function on_init()
	for _, name in ipairs({"evt.type", "evt.time", "time", "proc.pid", "proc.ppid", "proc.name", "proc.cmdline", "proc.exe", "user.name", "user.uid"}) do
		f[name] = chisel.request_field(name)
	end
	chisel.set_filter('evt.type in ["clone", "execve", "procexit"]')
	return true
end

-- find returns pid's place below its outermost shell ancestor (a shell
-- with no shell above it is {0, itself}), or false.
local function find(pid, n)
	local s = session[pid]
	if s ~= nil then
		return s
	end
	if n > MAX_ANCESTORS then
		return false
	end
	local pp = parent[pid]
	local ps = false
	if pp ~= nil and pp ~= pid then
		ps = find(pp, n + 1)
	end
	if ps then
		s = {ps[1] + 1, ps[2]}
	elseif shells[names[pid] or ""] then
		s = {0, pid}
	else
		s = false
	end
	session[pid] = s
	return s
end

function on_event()
	local typ = evt.field(f["evt.type"])
	local pid = evt.field(f["proc.pid"])
	if pid == nil then
		return true
	end
	local ppid = evt.field(f["proc.ppid"])
	local name = evt.field(f["proc.name"])
	if typ == "procexit" then
		names[pid], parent[pid], session[pid] = nil, nil, nil
		return true
	end
	if typ == "clone" then
		-- A fork copies its parent: the child's name is the parent's.
		if ppid ~= nil and names[ppid] == nil then
			names[ppid] = name
		end
		names[pid], parent[pid], session[pid] = name, ppid, nil
		return true
	end
	-- execve
	names[pid], session[pid] = name, nil
	if ppid ~= nil then
		parent[pid] = ppid
	end
	local ps = false
	if ppid ~= nil then
		ps = find(ppid, 1)
	end
	if not ps then
		session[pid] = shells[name or ""] and {0, pid} or false
		return true
	end
	local depth = ps[1] + 1
	session[pid] = {depth, ps[2]}
	if max_depth ~= -1 and depth - 1 > max_depth then
		return true
	end
	local user = evt.field(f["user.name"])
	if user == nil or user == "" then
		local uid = evt.field(f["user.uid"])
		user = uid ~= nil and tostring(uid) or "<NA>"
	end
	local cmd = evt.field(f["proc.cmdline"]) or evt.field(f["proc.exe"]) or name or "<NA>"
	local t = evt.field(f["evt.time"]) or evt.field(f.time)
	print(string.rep(" ", 3 * (depth - 1)) .. ps[2] .. " " .. t .. " " .. user .. ") " .. cmd)
	return true
end

-- A user chisel: an argument, a filter, a module from the chisel path.
local mymod = require "mymod"

description = "Counts the events of one kind per subject."
short_description = "Events of a kind per subject"
category = "Test"
stream = "audit"
args = {{name = "kind", description = "the kind to count", argtype = "string"}}

local kind
local counts = {}
local fsubject

function on_set_arg(name, val)
	kind = val
	return true
end

function on_init()
	chisel.set_filter('kind == "' .. kind .. '"')
	fsubject = chisel.request_field("subject")
	return true
end

function on_event()
	local s = evt.field(fsubject)
	counts[s] = (counts[s] or 0) + 1
end

function on_capture_end()
	for _, e in ipairs(cairn.top(counts)) do
		print(mymod.row(e.key, e.value))
	end
end

--[[
topfiles_bytes: the files read and written the most, by bytes, as sysdig's
chisel of that name. The bytes of every I/O syscall on a file descriptor
count for the file's name: read, write, pread, pwrite, readv, writev, and
both sides of copy_file_range, sendfile and splice (capture run records one
event per side).
]]--

description = "Shows the top files in terms of disk usage: bytes read plus bytes written, from the syscalls `capture run` records (read, write, pread, pwrite, readv, writev, and both sides of copy_file_range, sendfile and splice)."
short_description = "Top files by R+W bytes"
category = "I/O"
stream = "capture"

args = {
	{name = "top_number", description = "how many files to print (default 30)", argtype = "int", optional = true},
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
	chisel.exec("table_generator", "fd.name", "Filename", "data.bytes", "Bytes",
		'fd.type == "file"', top_number, "bytes")
	return true
end

--[[
common: helpers shared by chisels, after sysdig's common.lua, so that
sysdig chisels port with few changes. A module, not a chisel:

	require "common"
]]--

-- extend_string pads s with spaces to newlen, or cuts it to newlen - 1
-- characters and a space.
function extend_string(s, newlen)
	if #s < newlen then
		return s .. string.rep(" ", newlen - #s)
	end
	if newlen > 0 then
		return string.sub(s, 1, newlen - 1) .. " "
	end
	return ""
end

-- split cuts s at every occurrence of the plain string delimiter.
function split(s, delimiter)
	local result = {}
	local from = 1
	while true do
		local i, j = string.find(s, delimiter, from, true)
		if i == nil then
			break
		end
		table.insert(result, string.sub(s, from, i - 1))
		from = j + 1
	end
	table.insert(result, string.sub(s, from))
	return result
end

-- rtrim drops trailing blanks.
function rtrim(s)
	return (string.gsub(s, "%s+$", ""))
end

format_bytes = cairn.format_bytes
format_time_interval = cairn.format_interval

-- starts_with and ends_with test a plain prefix or suffix.
function starts_with(str, prefix)
	return string.sub(str, 1, #prefix) == prefix
end

function ends_with(str, suffix)
	return suffix == "" or string.sub(str, -#suffix) == suffix
end

-- ts_to_str renders a time given as seconds and nanoseconds (what
-- evt.get_ts returns) as one number of nanoseconds.
function ts_to_str(s, ns)
	return string.format("%u%09u", s, ns)
end

-- parse_numeric_input returns value as a number, or stops the chisel
-- saying which input is not one (sysdig's exits the process; a chisel run
-- by the daemon ends with an error instead).
function parse_numeric_input(value, name)
	local n = tonumber(value)
	if n == nil then
		error(string.format("Input %s must be a number.", name), 0)
	end
	return n
end

-- copytable copies a table deeply, metatables included.
function copytable(orig)
	if type(orig) ~= "table" then
		return orig
	end
	local copy = {}
	for k, v in next, orig, nil do
		copy[copytable(k)] = copytable(v)
	end
	return setmetatable(copy, copytable(getmetatable(orig)))
end

-- concattable appends the array part of src to dst and returns dst.
function concattable(dst, src)
	for i = 1, #src do
		dst[#dst + 1] = src[i]
	end
	return dst
end

-- typeof is type(v), or a table's or userdata's metatable _NAME.
function typeof(v)
	local t = type(v)
	if t == "table" or t == "userdata" then
		local mt = getmetatable(v)
		if mt ~= nil and mt._NAME ~= nil then
			return mt._NAME
		end
	end
	return t
end

-- st serializes a value as Lua-like text (name = value, tables in braces,
-- strings quoted), indented by depth, on one line when skipnewlines.
function st(val, name, skipnewlines, depth)
	depth = depth or 0
	local nl = skipnewlines and "" or "\n"
	local out = string.rep(" ", depth)
	if name ~= nil then
		out = out .. tostring(name) .. " = "
	end
	local t = type(val)
	if t == "table" then
		out = out .. "{" .. nl
		for k, v in pairs(val) do
			out = out .. st(v, k, skipnewlines, depth + 1) .. "," .. nl
		end
		return out .. string.rep(" ", depth) .. "}"
	elseif t == "string" then
		return out .. string.format("%q", val)
	elseif t == "number" or t == "boolean" then
		return out .. tostring(val)
	end
	return out .. "\"[inserializeable datatype:" .. t .. "]\""
end

-- pairs_top_by_val iterates over the num entries of t that order puts
-- first (all when num is 0), as sysdig's does.
function pairs_top_by_val(t, num, order)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys, function(a, b) return order(t, a, b) end)
	local i = 0
	return function()
		i = i + 1
		if (num == 0 or i <= num) and keys[i] then
			return keys[i], t[keys[i]]
		end
	end
end

-- format_value renders a table_generator value in its units: none, bytes,
-- time (ns) or timepct (share of timedelta).
function format_value(v, units, timedelta)
	if units == "bytes" then
		return format_bytes(v)
	elseif units == "time" then
		return format_time_interval(v)
	elseif units == "timepct" then
		if timedelta > 0 then
			return string.format("%.2f%%", v / timedelta * 100)
		end
		return "0.00%"
	end
	if v == math.floor(v) then
		return string.format("%d", v)
	end
	return tostring(v)
end

-- print_sorted_table prints stable (key -> number) as sysdig's
-- table_generator does: a header of the value and key descriptions, a rule,
-- then the largest values first (ties in key order), at most
-- viz_info.top_number rows (0: all). Keys of several fields are joined with
-- "\001\001".
function print_sorted_table(stable, ts_s, ts_ns, timedelta, viz_info)
	local width = 20
	local header = extend_string(viz_info.value_desc, width)
	for _, desc in ipairs(viz_info.key_desc) do
		header = header .. extend_string(desc, width)
	end
	print(rtrim(header))
	print(string.rep("-", 80))
	for _, e in ipairs(cairn.top(stable, viz_info.top_number)) do
		local keys = split(e.key, "\001\001")
		local keystr = ""
		for i, k in ipairs(keys) do
			if i < #keys then
				keystr = keystr .. extend_string(string.sub(k, 1, width), width)
			else
				keystr = keystr .. k
			end
		end
		print(extend_string(format_value(e.value, viz_info.value_units, timedelta), width) .. keystr)
	end
end

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

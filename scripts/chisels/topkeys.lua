--[[
topkeys: the KV keys written most: puts, deletes and transactions, by the
key each event is about (a txn counts for the first key it writes).
]]--

description = "Shows the KV keys with the most writes (kv.put, kv.delete and kv.txn events, counted by their subject: the key, or a txn's first key)."
short_description = "Top KV keys by number of writes"
category = "KV"
stream = "audit"

args = {
	{name = "top_number", description = "how many keys to print (default 30)", argtype = "int", optional = true},
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
	chisel.exec("table_generator", "subject", "Key", "evt.count", "Writes",
		'kind in ["kv.put", "kv.delete", "kv.txn"]', top_number, "none")
	return true
end

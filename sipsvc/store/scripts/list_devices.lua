-- One page of an account's device listing: ids in lexical order and their summary rows.
-- KEYS[1]  device ids (sorted set)   KEYS[2] device summaries (hash)
-- ARGV[1]  lexical start ("-" or "[<first id>")   ARGV[2] how many
-- returns  {id1, summary1, id2, summary2, ...}
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
local rows = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = rows[i] or ''
end
return out

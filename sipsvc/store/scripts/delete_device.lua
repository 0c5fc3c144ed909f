-- Delete one device and its account-level index entries, atomically.
-- KEYS[1]  device hash   KEYS[2] device ids   KEYS[3] device summaries   KEYS[4] MAC index
-- KEYS[5]  the device's bindings   KEYS[6] the account's registered devices
-- KEYS[7..]  user index sets the device is in
-- ARGV[1]  device id   ARGV[2] expected revision   ARGV[3] its MAC ("" = none)
-- ARGV[4]  pub/sub channel   ARGV[5] JSON list of the claim keys the device held
-- ARGV[6]  the account's registration events channel   ARGV[7] now (Unix seconds)
-- returns  {"ok"} | {"missing"} | {"conflict", current_rev}
local id = ARGV[1]
local current_rev = redis.call('HGET', KEYS[1], 'rev')
if not current_rev then return {'missing'} end
if current_rev ~= ARGV[2] then return {'conflict', current_rev} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
if ARGV[3] ~= '' and redis.call('HGET', KEYS[4], ARGV[3]) == id then
  redis.call('HDEL', KEYS[4], ARGV[3])
end
if redis.call('DEL', KEYS[5]) == 1 then
  redis.call('PUBLISH', ARGV[6], cjson.encode({event = 'unregister', device_id = id,
    at = tonumber(ARGV[7]), contacts = 0, reason = 'device_deleted'}))
end
redis.call('ZREM', KEYS[6], id)
for i = 7, #KEYS do redis.call('SREM', KEYS[i], id) end
for _, claim in ipairs(cjson.decode(ARGV[5])) do redis.call('PUBLISH', ARGV[4], claim) end
return {'ok'}

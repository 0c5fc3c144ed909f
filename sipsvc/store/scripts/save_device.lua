-- Create or replace one device and its account-level indexes, atomically.
-- KEYS[1]  device hash (rev, doc)          KEYS[2]  device ids (sorted set)
-- KEYS[3]  device summaries (hash)         KEYS[4]  MAC index (hash)
-- KEYS[5]  the device's bindings        KEYS[6]  the account's registered devices
-- KEYS[7..7+n_removed-1]  user index sets the device leaves
-- KEYS[7+n_removed..]     user index sets the device joins
-- ARGV[1]  device id   ARGV[2] expected revision ("" = the device must not exist yet)
-- ARGV[3]  new revision   ARGV[4] document JSON   ARGV[5] summary JSON
-- ARGV[6]  MAC the stored document had ("" = none)   ARGV[7] new MAC ("" = none)
-- ARGV[8]  n_removed   ARGV[9] JSON list of the claim keys the document holds
-- ARGV[10] what the registrar needs to authenticate the device (JSON)
-- ARGV[11] "1" to drop the device's registrations (credentials changed, or disabled)
-- ARGV[12] pub/sub channel   ARGV[13] JSON list of claim keys whose auth record this changes
-- ARGV[14] the account's registration events channel   ARGV[15] now (Unix seconds)
-- returns  {"ok", dropped binding JSON...} | {"exists"} | {"missing"} | {"conflict", current_rev} | {"mac_taken", holder}
local id = ARGV[1]
local current_rev = redis.call('HGET', KEYS[1], 'rev')
if ARGV[2] == '' then
  if current_rev then return {'exists'} end
elseif not current_rev then
  return {'missing'}
elseif current_rev ~= ARGV[2] then
  return {'conflict', current_rev}
end
local old_mac, new_mac = ARGV[6], ARGV[7]
if new_mac ~= '' then
  local holder = redis.call('HGET', KEYS[4], new_mac)
  if holder and holder ~= id then return {'mac_taken', holder} end
end
if old_mac ~= '' and old_mac ~= new_mac and redis.call('HGET', KEYS[4], old_mac) == id then
  redis.call('HDEL', KEYS[4], old_mac)
end
if new_mac ~= '' then redis.call('HSET', KEYS[4], new_mac, id) end
redis.call('HSET', KEYS[1], 'rev', ARGV[3], 'doc', ARGV[4], 'claims', ARGV[9], 'auth', ARGV[10])
local out = {'ok'}
if ARGV[11] == '1' then
  -- The dropped bindings go back to the caller: the phones still registered there are told.
  for _, json in ipairs(redis.call('HVALS', KEYS[5])) do out[#out + 1] = json end
  redis.call('DEL', KEYS[5])
  redis.call('ZREM', KEYS[6], id)
  -- The hash lives exactly as long as its latest binding: it existed, so the phone was registered.
  if #out > 1 then
    redis.call('PUBLISH', ARGV[14], cjson.encode({event = 'unregister', device_id = id,
      at = tonumber(ARGV[15]), contacts = 0, reason = 'device_changed'}))
  end
end
redis.call('ZADD', KEYS[2], 0, id)
redis.call('HSET', KEYS[3], id, ARGV[5])
local n_removed = tonumber(ARGV[8])
for i = 7, #KEYS do
  if i < 7 + n_removed then
    redis.call('SREM', KEYS[i], id)
  else
    redis.call('SADD', KEYS[i], id)
  end
end
for _, claim in ipairs(cjson.decode(ARGV[13])) do redis.call('PUBLISH', ARGV[12], claim) end
return out

-- Apply one REGISTER to a device's bindings, atomically (RFC 3261 §10.3 steps 6-8).
-- KEYS[1]  bindings of the device (hash: binding id -> JSON)
-- KEYS[2]  the account's registered devices (sorted set: device id -> latest expiry)
-- KEYS[3]  nonce-count key of the digest nonce used ("" check skipped when ARGV[7] is 0)
-- KEYS[4]  the account's registration events channel (pub/sub; not a key, same hash tag)
-- ARGV[1]  device id   ARGV[2] now (Unix seconds)   ARGV[3] Call-ID   ARGV[4] CSeq
-- ARGV[5]  "1" for Contact: * (remove all)   ARGV[6] most contacts allowed
-- ARGV[7]  nonce count (0 = none)   ARGV[8] nonce lifetime (s)
-- ARGV[9..] triples: binding id, binding JSON, expires_at (<= now removes the binding)
-- returns  {"ok", binding JSON...} | {"replay"} | {"out_of_order"} | {"too_many"}
local now = tonumber(ARGV[2])
local nc = tonumber(ARGV[7])
if nc > 0 then
  if nc <= tonumber(redis.call('GET', KEYS[3]) or '0') then return {'replay'} end
  redis.call('SET', KEYS[3], nc, 'EX', ARGV[8])
end
local call_id, cseq = ARGV[3], tonumber(ARGV[4])
local live, raw = {}, {}
local stored = redis.call('HGETALL', KEYS[1])
for i = 1, #stored, 2 do
  local binding = cjson.decode(stored[i + 1])
  if binding.expires_at > now then
    live[stored[i]], raw[stored[i]] = binding, stored[i + 1]
  else
    redis.call('HDEL', KEYS[1], stored[i])
  end
end
local was_registered = next(live) ~= nil
-- Step 7: a request older than what a binding already saw (same Call-ID) fails.
local function stale(binding) return binding.call_id == call_id and binding.cseq >= cseq end
if ARGV[5] == '1' then
  for _, binding in pairs(live) do if stale(binding) then return {'out_of_order'} end end
  redis.call('DEL', KEYS[1])
  live, raw = {}, {}
else
  for i = 9, #ARGV, 3 do
    if live[ARGV[i]] and stale(live[ARGV[i]]) then return {'out_of_order'} end
  end
  local next_raw, count = {}, 0
  for id, json in pairs(raw) do next_raw[id] = json end
  for i = 9, #ARGV, 3 do
    local expires_at = tonumber(ARGV[i + 2])
    if expires_at > now then
      next_raw[ARGV[i]] = ARGV[i + 1]
      live[ARGV[i]] = {expires_at = expires_at}
    else
      next_raw[ARGV[i]] = nil
    end
  end
  for _ in pairs(next_raw) do count = count + 1 end
  if count > tonumber(ARGV[6]) then return {'too_many'} end
  for i = 9, #ARGV, 3 do
    if next_raw[ARGV[i]] then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    else redis.call('HDEL', KEYS[1], ARGV[i]) end
  end
  raw = next_raw
end
-- Each kept binding's expiry is known by now (decoded above, or sent in ARGV): no second decode.
local latest, out = 0, {'ok'}
for id, json in pairs(raw) do
  local expires_at = live[id].expires_at
  if expires_at > latest then latest = expires_at end
  out[#out + 1] = json
end
-- Expired entries of the index are dropped here; readers also filter by time, so none is needed
-- for correctness.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if latest > now then
  redis.call('PEXPIREAT', KEYS[1], math.ceil(latest * 1000))
  redis.call('ZADD', KEYS[2], latest, ARGV[1])
else
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
-- Registration events for API streams, published by the write itself (nothing is missed).
local event
if latest > now then
  event = was_registered and 'refresh' or 'register'
elseif was_registered then
  event = 'unregister'
end
if event then
  redis.call('PUBLISH', KEYS[4], cjson.encode({event = event, device_id = ARGV[1],
    expires_at = latest, at = now, contacts = #out - 1}))
end
return out

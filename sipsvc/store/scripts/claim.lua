-- Take a claim on a unique value (one key, so it works on Redis Cluster).
-- KEYS[1]  the claim key
-- ARGV[1]  the claimant, "<account_id>/<document_id>"
-- ARGV[2]  now, Unix seconds (stored so that an abandoned claim can be recognised by age)
-- ARGV[3]  "" or the exact value of a claim the caller has verified to be abandoned
-- returns  "ok" when the claim is ours, else the current value ("<holder>|<since>")
local current = redis.call('GET', KEYS[1])
if current then
  local holder = string.match(current, '^([^|]*)')
  if holder ~= ARGV[1] and current ~= ARGV[3] then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
return 'ok'

-- Release a claim, only if the caller still holds it.
-- KEYS[1]  the claim key
-- ARGV[1]  the claimant, "<account_id>/<document_id>"
-- returns  1 when released, 0 when the claim was not the caller's
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^([^|]*)') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

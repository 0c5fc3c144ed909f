-- Count one failed digest attempt and ban past a threshold, atomically (all keys: one source).
-- KEYS[1] failures of the source   KEYS[2] failures of the source for one account's username
-- KEYS[3] ban of the source        KEYS[4] ban of the source for that username
-- ARGV[1] window (s)   ARGV[2] failures per source   ARGV[3] failures per username and source
-- ARGV[4] ban (s)
-- returns {"source"|"user"|"counted", failures of the source, failures for the username}
local function count(key)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  return n
end
local source, user = count(KEYS[1]), count(KEYS[2])
if source >= tonumber(ARGV[2]) and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], source, 'EX', ARGV[4])
  redis.call('DEL', KEYS[1])
  return {'source', source, user}
end
if user >= tonumber(ARGV[3]) and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SET', KEYS[4], user, 'EX', ARGV[4])
  redis.call('DEL', KEYS[2])
  return {'user', source, user}
end
return {'counted', source, user}

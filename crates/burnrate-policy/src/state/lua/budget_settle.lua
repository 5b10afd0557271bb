-- Releases a reservation and adds the real cost on every counter; the levels after.
-- KEYS: counter hashes. ARGV: reserved, actual, then per key: expire_at (Unix seconds).
local out = {}
for i = 1, #KEYS do
  local reserved = redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(ARGV[1]))
  if reserved < 0 then
    -- The counter was lost (a Redis restart) between reservation and settlement.
    redis.call('HSET', KEYS[i], 'reserved', 0)
    reserved = 0
  end
  local spent = redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2])
  redis.call('EXPIREAT', KEYS[i], ARGV[2 + i])
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
return out

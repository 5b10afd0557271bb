-- Releases a lease (unless it lapsed or was settled already) and adds the real cost on every
-- counter; the levels after.
-- KEYS: per counter, its hash then its lease set. ARGV: lease amount, lease member, actual,
-- then per counter: expire_at (Unix seconds).
local out = {}
for i = 1, #KEYS / 2 do
  local counter, leases = KEYS[2 * i - 1], KEYS[2 * i]
  local reserved
  if redis.call('ZREM', leases, ARGV[2]) == 1 then
    reserved = redis.call('HINCRBY', counter, 'reserved', -tonumber(ARGV[1]))
    if reserved < 0 then
      -- The counter was lost (a Redis restart) between reservation and settlement.
      redis.call('HSET', counter, 'reserved', 0)
      reserved = 0
    end
  else
    reserved = tonumber(redis.call('HGET', counter, 'reserved') or 0)
  end
  local spent = redis.call('HINCRBY', counter, 'spent', ARGV[3])
  redis.call('EXPIREAT', counter, ARGV[3 + i])
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
return out

-- Reserves ARGV[1] nanodollars against every budget counter, or against none.
-- KEYS: counter hashes {spent, reserved}. ARGV: amount, then per key: limit, enforce (1|0),
-- expire_at (Unix seconds).
-- Returns {1, spent, reserved, ...} (levels before) or {0, index, spent, reserved}.
local amount = tonumber(ARGV[1])
local out = {1}
for i = 1, #KEYS do
  local level = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  local spent = tonumber(level[1] or 0)
  local reserved = tonumber(level[2] or 0)
  if ARGV[3 * i] == '1' and spent + reserved + amount > tonumber(ARGV[3 * i - 1]) then
    return {0, i - 1, spent, reserved}
  end
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'reserved', amount)
  redis.call('EXPIREAT', KEYS[i], ARGV[3 * i + 1])
end
return out

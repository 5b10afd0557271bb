-- Reserves a lease against every budget counter, or against none, after releasing each
-- counter's lapsed leases.
-- KEYS: per counter, its hash {spent, reserved, seeded} then its lease set (a sorted set of
-- `amount:id` scored by expiry). ARGV: amount, lease member, ttl_s, then per counter: limit,
-- enforce (1|0), expire_at (Unix seconds).
-- Returns {1, spent, reserved, ...} (levels before) or {0, index, spent, reserved}.
local amount = tonumber(ARGV[1])
local now = tonumber(redis.call('TIME')[1])
local counters = #KEYS / 2
local out = {1}
for i = 1, counters do
  local counter, leases = KEYS[2 * i - 1], KEYS[2 * i]
  local lapsed = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  if #lapsed > 0 then
    local release = 0
    for _, member in ipairs(lapsed) do
      release = release + tonumber(string.match(member, '^(%d+):'))
    end
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    if redis.call('HINCRBY', counter, 'reserved', -release) < 0 then
      redis.call('HSET', counter, 'reserved', 0)
    end
  end
  local level = redis.call('HMGET', counter, 'spent', 'reserved')
  local spent = tonumber(level[1] or 0)
  local reserved = tonumber(level[2] or 0)
  local arg = 3 + 3 * (i - 1)
  if ARGV[arg + 2] == '1' and spent + reserved + amount > tonumber(ARGV[arg + 1]) then
    return {0, i - 1, spent, reserved}
  end
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
for i = 1, counters do
  local counter, leases = KEYS[2 * i - 1], KEYS[2 * i]
  local expire_at = ARGV[3 + 3 * i]
  redis.call('HINCRBY', counter, 'reserved', amount)
  redis.call('ZADD', leases, now + tonumber(ARGV[3]), ARGV[2])
  redis.call('EXPIREAT', counter, expire_at)
  redis.call('EXPIREAT', leases, expire_at)
end
return out

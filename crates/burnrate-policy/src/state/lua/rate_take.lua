-- GCRA over several buckets, all or nothing; the same arithmetic as src/gcra.rs.
-- KEYS: bucket keys. ARGV: per key, limit (cells per minute) and cost (cells).
-- Returns {1, reset_us...} when taken, {0, index, retry_after_us or -1} when not.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tats = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local cost = tonumber(ARGV[2 * i])
  if cost > limit then
    return {0, i - 1, -1}
  end
  local interval = math.ceil(60000000 / limit)
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then
    tat = now
  end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - interval * limit
  if now < allow_at then
    return {0, i - 1, allow_at - now}
  end
  tats[i] = new_tat
end
local out = {1}
for i = 1, #KEYS do
  local ttl_ms = math.max(1, math.ceil((tats[i] - now) / 1000))
  redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', ttl_ms)
  out[#out + 1] = tats[i] - now
end
return out

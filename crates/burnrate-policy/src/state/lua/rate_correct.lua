-- Corrects one GCRA bucket by ARGV[2] cells (negative gives back), never below empty.
-- KEYS[1]: bucket. ARGV: limit, delta.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = math.ceil(60000000 / tonumber(ARGV[1]))
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + tonumber(ARGV[2]) * interval
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
end
return 1

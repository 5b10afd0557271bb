-- Looks a run up, registering it on first sight with its depth from its parent's.
-- KEYS: run hash, parent run hash. ARGV: has_parent (1|0), max_depth, ttl_s.
-- Returns {depth, exceeded or ''}.
local known = redis.call('HMGET', KEYS[1], 'depth', 'exceeded')
if known[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {tonumber(known[1]), known[2] or ''}
end
local depth = 0
if ARGV[1] == '1' then
  local parent = redis.call('HGET', KEYS[2], 'depth')
  if parent then
    depth = tonumber(parent) + 1
  else
    depth = 1
  end
end
redis.call('HSET', KEYS[1], 'depth', depth, 'tokens', 0, 'tool_calls', 0)
local exceeded = ''
if depth > tonumber(ARGV[2]) then
  exceeded = 'depth ' .. depth
  redis.call('HSET', KEYS[1], 'exceeded', exceeded)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {depth, exceeded}

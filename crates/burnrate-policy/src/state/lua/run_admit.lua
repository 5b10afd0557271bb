-- Looks a run up, registering it on first sight with its depth from its parent's and its
-- parent's key (`parent`): the runs above it are found by following those links when they
-- are needed, as memory does, so a link learned after it registered still counts.
-- KEYS: run hash, parent run hash. ARGV: has_parent (1|0), max_depth, ttl_s, the most runs
-- above to follow (MAX_RUNS_ABOVE).
-- Returns {depth, exceeded or '', 1 when exceeded is a run's above it else 0}: the run's own
-- limit first, else the nearest run above it that is past one.
local function answer(depth)
  local own = redis.call('HGET', KEYS[1], 'exceeded')
  if own then
    return {depth, own, 0}
  end
  -- The runs above, ending where the links do or loop back (bad headers).
  local seen = {[KEYS[1]] = true}
  local above = redis.call('HGET', KEYS[1], 'parent')
  local followed = 0
  while above and not seen[above] and followed < tonumber(ARGV[4]) do
    local exceeded = redis.call('HGET', above, 'exceeded')
    if exceeded then
      return {depth, exceeded, 1}
    end
    seen[above] = true
    followed = followed + 1
    above = redis.call('HGET', above, 'parent')
  end
  return {depth, '', 0}
end

local depth = redis.call('HGET', KEYS[1], 'depth')
if depth then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return answer(tonumber(depth))
end
depth = 0
-- A run named as its own parent has none.
if ARGV[1] == '1' and KEYS[2] ~= KEYS[1] then
  local parent = redis.call('HGET', KEYS[2], 'depth')
  if parent then
    depth = tonumber(parent) + 1
  else
    depth = 1
  end
  redis.call('HSET', KEYS[1], 'parent', KEYS[2])
end
-- A run first seen as the run above another keeps what that one's calls counted.
redis.call('HSET', KEYS[1], 'depth', depth)
if depth > tonumber(ARGV[2]) then
  redis.call('HSETNX', KEYS[1], 'exceeded', 'depth ' .. depth)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return answer(depth)

-- Adds a settled call to its run and checks the run's limits; the limit it is past or ''.
-- Its tokens and tool calls also count for every run above it (following the `parent` links,
-- see run_admit.lua), each checked against the same token and tool-call limits; not its cost
-- (the adaptive limit compares a run's own cost with its feature's median run) nor its
-- tools (loops are within one agent).
-- KEYS: run hash, run loop-count hash. ARGV: tokens, tool_calls, cost (nanodollars),
-- max_tokens, max_tool_calls, max_cost, loop_repeats, ttl_s, the most runs above to follow
-- (MAX_RUNS_ABOVE), then the call's tools (name:args_hash). A run lost between admission
-- and settlement (expired, Redis restarted) comes back at depth 0, as in memory.
redis.call('HSETNX', KEYS[1], 'depth', 0)
local tokens = redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
local tool_calls = redis.call('HINCRBY', KEYS[1], 'tool_calls', ARGV[2])
local cost = redis.call('HINCRBY', KEYS[1], 'cost', ARGV[3])
local worst, worst_tool = 0, ''
for i = 10, #ARGV do
  local count = redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
  if count > worst then
    worst, worst_tool = count, ARGV[i]
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[8])
if #ARGV >= 10 then
  redis.call('EXPIRE', KEYS[2], ARGV[8])
end

local seen = {[KEYS[1]] = true}
local above = redis.call('HGET', KEYS[1], 'parent')
local followed = 0
while above and not seen[above] and followed < tonumber(ARGV[9]) do
  local above_tokens = redis.call('HINCRBY', above, 'tokens', ARGV[1])
  local above_tools = redis.call('HINCRBY', above, 'tool_calls', ARGV[2])
  redis.call('EXPIRE', above, ARGV[8])
  if not redis.call('HGET', above, 'exceeded') then
    if above_tokens > tonumber(ARGV[4]) then
      redis.call('HSET', above, 'exceeded', 'tokens ' .. above_tokens)
    elseif above_tools > tonumber(ARGV[5]) then
      redis.call('HSET', above, 'exceeded', 'tool_calls ' .. above_tools)
    end
  end
  seen[above] = true
  followed = followed + 1
  above = redis.call('HGET', above, 'parent')
end

local exceeded = redis.call('HGET', KEYS[1], 'exceeded')
if exceeded then
  return exceeded
end
if tokens > tonumber(ARGV[4]) then
  exceeded = 'tokens ' .. tokens
elseif tool_calls > tonumber(ARGV[5]) then
  exceeded = 'tool_calls ' .. tool_calls
elseif worst >= tonumber(ARGV[7]) then
  exceeded = 'loop ' .. worst .. ' ' .. worst_tool
elseif cost > tonumber(ARGV[6]) then
  exceeded = 'cost ' .. cost
else
  return ''
end
redis.call('HSET', KEYS[1], 'exceeded', exceeded)
return exceeded

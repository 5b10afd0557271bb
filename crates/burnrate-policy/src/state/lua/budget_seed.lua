-- Sets a counter's spend when Redis has none for it. KEYS[1]: counter. ARGV: spent, expire_at.
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return 1

-- Adds spend rebuilt from the store to a counter, once: a counter seeded before is left as
-- it is. KEYS[1]: counter. ARGV: spent, expire_at.
if redis.call('HSETNX', KEYS[1], 'seeded', 1) == 1 then
  redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
  if redis.call('TTL', KEYS[1]) < 0 then
    redis.call('EXPIREAT', KEYS[1], ARGV[2])
  end
end
return 1

-- Adds to a plain counter; its new total. KEYS[1]: counter. ARGV: amount, expire_at.
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return total

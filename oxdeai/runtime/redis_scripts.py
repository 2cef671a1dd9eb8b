"""The Lua scripts the Redis store commits with: Redis runs each one atomically.

Contract: `CAS_SCRIPT` applies a step's writes only if every key the step read
still holds what it read (and the leases due are those it expired), and checks
everything that can fail before its first write, so a failing script never leaves
half a step. `RESERVE_SCRIPT` hands out a block of decision numbers, never one a
process has already held. Their KEYS and ARGV are laid out above each script;
`oxdeai.runtime.redis_store` is their one caller.
"""

# Stands for "the key was absent": no stored value (JSON or an int) looks like it. The
# scripts below spell it as the Lua literal '(absent)'; the two must stay equal.
NIL = "(absent)"

# KEYS: the n keys the step read, one key per write, then the lease set, the order counter,
# the decision-number counter and the meta hash.
# ARGV: the lowest value the decision-number counter may hold (what this process has
# reserved), the deadline (Redis time in microseconds) after which the step must not be
# applied (the client may have given up on it), n, the n values read (NIL for absent), the step's time when it asked for due
# leases ('' if it did not), how many leases it found due, their members, then per write
# (op, value, number): set with a TTL (0: none), new (a set of a key that must not exist
# yet: a new call's record), zadd with a score, zrem; last, the policy version's sha256.
# Returns the commit order; or, with nothing written: {-1, the n values now held, the due
# leases now as member, score pairs} (stale), {-2} (the store's data is gone: no meta),
# {-3} (the counter is behind this process's numbers: raised to them, reserve anew),
# {-4} (a new call's record exists: its number was used before), {-5} (the deadline has
# passed: the client may have answered `store_unavailable` already), {-6, sha} (the store
# belongs to another policy version now: another process rolled it over). Everything that can fail
# is checked before the first write, so a failing script never leaves half a step.
CAS_SCRIPT = """
local n = tonumber(ARGV[3])
local leases, order, seq, meta = KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]
local now, due = ARGV[n + 4], tonumber(ARGV[n + 5])
local fresh = true
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if v == false then v = '(absent)' end
  if v ~= ARGV[i + 3] then fresh = false break end
end
if fresh and now ~= '' then
  if redis.call('ZCOUNT', leases, '-inf', now) ~= due then fresh = false end
  for i = 1, due do
    local score = redis.call('ZSCORE', leases, ARGV[n + 5 + i])
    if not score or tonumber(score) > tonumber(now) then fresh = false break end
  end
end
if not fresh then
  local held = {-1}
  for i = 1, n do
    local v = redis.call('GET', KEYS[i])
    if v == false then v = '(absent)' end
    held[#held + 1] = v
  end
  if now ~= '' then
    for _, v in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'WITHSCORES')) do held[#held + 1] = v end
  end
  return held
end
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000000 + tonumber(clock[2]) > tonumber(ARGV[2]) then return {-5} end
if redis.call('HEXISTS', meta, 'policy') == 0 then return {-2} end
local bound = redis.call('HGET', meta, 'policy')
if bound ~= ARGV[#ARGV] then return {-6, bound} end
local counter = tonumber(redis.call('GET', seq) or '0')
local floor = tonumber(ARGV[1])
if counter == nil then return redis.error_reply('the decision counter is not a number') end
if counter < floor then redis.call('SET', seq, floor) return {-3} end
local kind = redis.call('TYPE', leases)['ok']
if kind ~= 'zset' and kind ~= 'none' then return redis.error_reply('the lease set is not a sorted set') end
local a = n + 6 + due
for i = n + 1, #KEYS - 4 do
  if ARGV[a] == 'new' and redis.call('EXISTS', KEYS[i]) == 1 then return {-4} end
  a = a + 3
end
local committed = redis.call('INCR', order)
a = n + 6 + due
for i = n + 1, #KEYS - 4 do
  local op, value, number = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if op == 'set' or op == 'new' then
    if number > 0 then redis.call('SET', KEYS[i], value, 'EX', number) else redis.call('SET', KEYS[i], value) end
  elseif op == 'zadd' then redis.call('ZADD', KEYS[i], number, value)
  elseif op == 'zrem' then redis.call('ZREM', KEYS[i], value)
  end
end
return committed
"""


# Reserve a block of decision numbers: KEYS[1] the counter, ARGV the highest number the
# caller has held and the block size. A counter below that (Redis lost it) is raised first.
RESERVE_SCRIPT = """
local held = tonumber(ARGV[1])
local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
if counter == nil then return redis.error_reply('the decision counter is not a number') end
if counter < held then redis.call('SET', KEYS[1], held) end
return redis.call('INCRBY', KEYS[1], ARGV[2])
"""

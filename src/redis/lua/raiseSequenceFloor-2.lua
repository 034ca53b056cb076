--[[
  Raises the order counter to at least the floor (never lowers it). When it was below, Redis lost
  it: every id at or below the floor still in the queue was drawn after the loss and before this
  raise, and the reset mark says so.

  Input:
    KEYS[1] the id counter (the dialog-updates queue's job id counter)
    KEYS[2] the reset mark

    ARGV[1] the floor

  Output:
    { raised, mark }
      raised 1 when the counter was below the floor and was raised, else 0
      mark   the highest floor the counter was ever raised to (0: never)
]]
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local raised = 0
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[1])
  raised = 1
end
return { raised, tonumber(redis.call('GET', KEYS[2]) or '0') }

#!lua flags=allow-oom
--[[
  Records the update id of a queued postback under its event id's key. Allowed when Redis is out of
  memory (noeviction): the update was queued, and a claim left pending would refuse the sender's
  retries, then let a later one queue the update a second time.

  Input:
    KEYS[1] the event id's key

    ARGV[1] update id
    ARGV[2] time to live, seconds

  Output:
    1
]]
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1

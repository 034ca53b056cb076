--[[
  Holds a bot's Telegram sends after a 429: nothing of the bot is booked to go before now +
  retry_after (see reserveTelegramSend-4.lua), on Redis' clock. A longer hold already set stays.

  Input:
    KEYS[1] the bot's hold (µs)
    ARGV[1] the hold in ms (Telegram's retry_after)

  Output:
    the hold's end in µs
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local holdMs = tonumber(ARGV[1])
local untilUs = now + holdMs * 1000
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if current > untilUs then return string.format('%d', current) end
redis.call('SET', KEYS[1], string.format('%d', untilUs), 'PX', math.ceil(holdMs) + 1000)
return string.format('%d', untilUs)

-- wrk script: single-event PUTs the way benchmarks/compare-nginx.sh's wrk
-- run sends them, to catchall and to nginx-204 alike:
--   PUT /events/d<N>.wrk.test/delivered, N cycling over WRK_DOMAINS domains
--   (5000), every 500th a bounce.
-- Each wrk thread has its own copy of this script; a thread number keeps
-- their sequences apart.
local domains = tonumber(os.getenv("WRK_DOMAINS") or "5000")
local counter = 0
local thread_no = 0
local threads = 0

function setup(thread)
  thread:set("thread_no", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local n = (counter * 7919 + thread_no * 104729) % domains
  local kind = (counter % 500 == 0) and "bounced" or "delivered"
  return wrk.format("PUT", "/events/d" .. n .. ".wrk.test/" .. kind)
end

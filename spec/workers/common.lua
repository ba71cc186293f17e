-- spec/workers/common.lua - shared bits of the worker OS processes the specs
-- start (`lua5.4 spec/workers/<name>.lua DIR ...`, run from the repo root).
local lash = require "lash"
local helpers = require "spec.helpers"

local M = { lash = lash, helpers = helpers }

-- Opens the store with worker defaults; options override.
function M.open(dir, opts)
  local o = { durability = "none" }
  for k, v in pairs(opts or {}) do o[k] = v end
  local eng, msg, code = lash.open(dir, o)
  if not eng then
    io.stderr:write("open failed: ", tostring(msg), " ", tostring(code), "\n")
    os.exit(3)
  end
  return eng
end

-- A line-buffered append-only log ("-": stdout, for a worker that shares no
-- files with the spec, in a mount namespace of its own).
function M.log(path)
  local f = path == "-" and io.stdout or assert(io.open(path, "a"))
  f:setvbuf("line")
  return function(...)
    f:write(table.concat({ ... }, " "), "\n")
  end
end

-- Runs eng:run() until done() is true or deadline_ms passes (or the engine
-- meets a storage error: false), checking every step_ms from an engine
-- coroutine. The pause is an await with a timeout on a private external row
-- that never completes.
function M.run_until(eng, owner, done, deadline_ms, step_ms)
  local sentinel = assert(eng:start("sentinel", nil,
    { id = "sentinel-" .. owner, disposition = "external" }))
  local stop_at = helpers.mono_ms() + deadline_ms
  local finished = false
  eng:spawn(function()
    while not done() and helpers.mono_ms() < stop_at do
      eng:await(sentinel, { timeout_ms = step_ms or 20 })
    end
    finished = true
    eng:stop()
  end)
  while not finished do
    local ok, msg, code = eng:run()
    if not ok then
      -- a storage error: the engine cannot go on (lash_engine_storage_error;
      -- on PostgreSQL, a write of a worker stopped inside it that the server
      -- ended): a worker says so and exits
      io.stderr:write("storage error: ", tostring(msg), " ", tostring(code), "\n")
      return false
    end
  end
  return done()
end

return M

--- lash.log: the worker's log lines. One line per notable moment, from the
--- engine's observer hook (eng:on_log) and from the worker itself (start,
--- stop, a storage error): human ("TIME LEVEL what: details") or JSON (one
--- object per line, for log shippers). Levels: quiet prints errors and
--- warnings only; normal adds takeovers, retries, the suspension summary
--- and the worker's own lines; verbose adds every completion, cancellation
--- and suspension.
local M = {}

local LEVELS = { quiet = 1, normal = 2, verbose = 3 }
M.LEVELS = LEVELS
-- The least verbosity at which each severity prints.
local SHOWN_AT = { error = 1, warn = 1, info = 2, debug = 3 }

-- "2026-12-01T14:40:01.123Z"
local function stamp(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. string.format(".%03dZ", ms % 1000)
end
M.stamp = stamp

local function first_line(s)
  if s == nil then return nil end
  s = tostring(s)
  return (s:match("^[^\n]*"))
end
M.first_line = first_line

-- A failure outcome's message (the first line of it).
local function error_of(outcome)
  if type(outcome) ~= "table" then return nil end
  local e = outcome.error
  if type(e) == "table" then
    local m = e.message
    if m == nil then m = e.class end
    return first_line(m)
  end
  return first_line(e)
end

--- What an observation (or a worker moment) says: nil when it is not worth
--- a line, else {level=, event=, msg=, fields...}. `ob` is what eng:on_log
--- hands its function, or {type = "process.attempt_failed", ...} (the
--- retry event: id, kind, attempt, error, retry_at), or a worker moment
--- {type = "worker", level =, msg =, ...}.
function M.describe(ob)
  local t = ob.type
  if t == "finished" then
    local st = ob.status
    if st == "failed" then
      return { level = "error", event = "failed", id = ob.id, kind = ob.kind,
        attempt = ob.attempt, error = error_of(ob.outcome) or "(no message)",
        class = type(ob.outcome) == "table" and type(ob.outcome.error) == "table" and
          ob.outcome.error.class or nil }
    elseif st == "cancelled" then
      return { level = "debug", event = "cancelled", id = ob.id, kind = ob.kind,
        attempt = ob.attempt }
    end
    return { level = "debug", event = "completed", id = ob.id, kind = ob.kind,
      attempt = ob.attempt }
  elseif t == "process.attempt_failed" or t == "retry" then
    return { level = "warn", event = "retry", id = ob.id, kind = ob.kind,
      attempt = ob.attempt, error = first_line(ob.error) or error_of(ob.outcome),
      retry_at = ob.retry_at }
  elseif t == "lease_lost" then
    return { level = "warn", event = "lease_lost", id = ob.id, kind = ob.kind,
      attempt = ob.attempt,
      hint = "its renewal was refused (another worker took the row after the lease " ..
        "lapsed, or the store was unreachable): this worker dropped the body" }
  elseif t == "taken_over" then
    return { level = "info", event = "taken_over", id = ob.id, from = ob.owner,
      why = ob.owner_gone and "owner gone" or "lease lapsed" }
  elseif t == "suspended" then
    return { level = "debug", event = "suspended", id = ob.id, kind = ob.kind }
  elseif t == "summary" then
    return { level = "info", event = "suspensions", count = ob.suspended,
      period_ms = ob.period_ms }
  elseif t == "storage" then
    return { level = "error", event = "storage_error", store = ob.store, code = ob.code,
      error = first_line(ob.msg), todo = ob.todo }
  elseif t == "worker" then
    local d = { level = ob.level or "info", event = ob.event or "worker", msg = ob.msg }
    for k, v in pairs(ob.fields or {}) do d[k] = v end
    return d
  end
  return nil
end

local function human(d, now)
  local e = d.event
  local head = stamp(now) .. " " .. string.upper(d.level) .. " "
  local who = d.id and (d.kind and (d.kind .. " " .. d.id) or d.id) or nil
  local att = d.attempt and (" (attempt " .. d.attempt .. ")") or ""
  if e == "failed" then
    return head .. "failed " .. who .. att .. ": " .. d.error
  elseif e == "retry" then
    local at = d.retry_at and (", retry at " .. stamp(d.retry_at)) or ""
    return head .. "attempt failed " .. who .. att .. ": " .. tostring(d.error) .. at
  elseif e == "lease_lost" then
    return head .. "lease lost " .. who .. att .. ": " .. d.hint
  elseif e == "taken_over" then
    if d.why == "owner gone" then
      return head .. "took over " .. who .. (d.from and (" from gone owner " .. d.from) or "")
    end
    return head .. "took over " .. who .. (d.from and (" from " .. d.from) or "") ..
      " (its lease lapsed)"
  elseif e == "suspensions" then
    return head .. string.format("%d suspensions in the last %ds", d.count,
      (d.period_ms or 60000) // 1000)
  elseif e == "storage_error" then
    return head .. string.format("storage error on %s: %s (%s): %s", tostring(d.store),
      tostring(d.error), tostring(d.code), tostring(d.todo))
  elseif e == "completed" or e == "cancelled" or e == "suspended" then
    return head .. e .. " " .. who .. att
  end
  return head .. tostring(d.msg or e)
end

--- A logger: logger(ob) writes the line of `ob` (if any at this level).
--- opts: format = "human" | "json", level = "quiet" | "normal" | "verbose",
--- out = a file (default io.stderr), now = fn() -> ms, json = fn(table) -> text.
function M.new(opts)
  local fmt = opts.format or "human"
  local level = LEVELS[opts.level or "normal"]
  local out = opts.out or io.stderr
  local now = opts.now or function() return math.floor(os.time() * 1000) end
  local encode = opts.json
  return function(ob)
    local d = M.describe(ob)
    if d == nil or SHOWN_AT[d.level] > level then return nil end
    local line
    if fmt == "json" then
      d.ts = stamp(now())
      line = encode(d)
    else
      line = human(d, now())
    end
    out:write(line, "\n")
    out:flush()
    return line
  end
end

return M

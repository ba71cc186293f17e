-- lash.retry - the options of issue 13 items 1, 2 and 7 (retries with
-- backoff, delays, unique keys) as define and start take them, checked,
-- and the CLI's time forms (--delay 5s, --at 2026-12-24T18:00Z).
-- Types raise at the caller; values give nil, msg (the caller returns
-- them as an EINVAL failure). The rules themselves are the core's.
local M = {}

local POLICY = { "max_attempts", "initial_ms", "factor", "max_ms", "jitter" }
M.POLICY = POLICY

local function argerror(fname, name, msg, level)
  error(string.format("bad argument '%s' to '%s' (%s)", name, fname, msg), level)
end

local function number_field(fname, name, v, integer, level)
  if v == nil then return nil end
  if type(v) ~= "number" or (integer and math.type(v) ~= "integer") then
    argerror(fname, name, (integer and "integer" or "number") .. " expected, got " ..
      (type(v) == "number" and "float" or type(v)), level)
  end
  return v
end

--- The checked retry policy of opts.retry (nil when absent): a table
--- {max_attempts, initial_ms, factor, max_ms, jitter}; or nil, msg.
function M.policy(fname, r, level)
  level = (level or 4) + 1
  if r == nil then return nil end
  if type(r) ~= "table" then argerror(fname, "retry", "table expected, got " .. type(r), level) end
  for k in pairs(r) do
    local known = false
    for _, n in ipairs(POLICY) do
      if k == n then known = true end
    end
    if not known then
      argerror(fname, "retry", 'unknown option "' .. tostring(k) .. '" (options: ' ..
        table.concat(POLICY, ", ") .. ")", level)
    end
  end
  local p = {
    max_attempts = number_field(fname, "retry.max_attempts", r.max_attempts, true, level),
    initial_ms = number_field(fname, "retry.initial_ms", r.initial_ms, true, level) or 1000,
    factor = number_field(fname, "retry.factor", r.factor, false, level) or 2,
    max_ms = number_field(fname, "retry.max_ms", r.max_ms, true, level) or 0,
    jitter = number_field(fname, "retry.jitter", r.jitter, false, level) or 0,
  }
  if p.max_attempts == nil then
    return nil, "retry.max_attempts is required (attempts in all, the first included)"
  end
  if p.max_attempts < 1 or p.max_attempts > 0xffffffff then
    return nil, "retry.max_attempts must be >= 1, got " .. p.max_attempts
  end
  if p.initial_ms < 0 then return nil, "retry.initial_ms must be >= 0, got " .. p.initial_ms end
  if p.max_ms < 0 then return nil, "retry.max_ms must be >= 0 (0: no ceiling), got " .. p.max_ms end
  if p.factor < 1 or p.factor ~= p.factor or p.factor == math.huge then
    return nil, "retry.factor must be a number >= 1, got " .. p.factor
  end
  if not (p.jitter >= 0 and p.jitter <= 1) then
    return nil, "retry.jitter must be between 0 and 1, got " .. p.jitter
  end
  return p
end

--- The extra fields of a start (retry, run_at, unique_key, unique_for_ms)
--- for lash.core, from the start's opts and its kind's define options
--- (`d`, may be nil; start wins); or nil, msg.
function M.start_fields(fname, opts, d, level)
  level = level or 6
  local out = {}
  local p, why = M.policy(fname, opts.retry, level)
  if why then return nil, why end
  out.retry = p or (d and d.retry)
  local delay = number_field(fname, "delay_ms", opts.delay_ms, true, level)
  local at = opts.run_at
  if at ~= nil and type(at) ~= "number" then
    return nil, "run_at must be a number (ms since the epoch), got " .. type(at)
  end
  if delay ~= nil and at ~= nil then
    return nil, "delay_ms and run_at are both given: give one"
  end
  if delay ~= nil and delay < 0 then return nil, "delay_ms must be >= 0, got " .. delay end
  if at ~= nil and (at < 0 or math.type(at) ~= "integer") then
    return nil, "run_at must be a whole number of ms since the epoch >= 0, got " .. at
  end
  out.run_at, out.delay_ms = at, delay ~= nil and delay > 0 and delay or nil
  local key = opts.unique_key
  if key ~= nil and type(key) ~= "string" then
    argerror(fname, "unique_key", "string expected, got " .. type(key), level)
  end
  local ufor = number_field(fname, "unique_for_ms", opts.unique_for_ms, true, level)
  if ufor ~= nil and key == nil then return nil, "unique_for_ms needs a unique_key" end
  if ufor ~= nil and ufor < 0 then return nil, "unique_for_ms must be >= 0, got " .. ufor end
  if key ~= nil and (#key == 0 or #key > 255) then
    return nil, "unique_key must be 1 to 255 bytes, got " .. #key
  end
  out.unique_key, out.unique_for_ms = key, ufor
  if next(out) == nil then return false end
  return out
end

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- ms since the epoch of an ISO 8601 time with a zone: 2026-12-24T18:00Z,
--- 2026-12-24T18:00:30.250+01:00 (Z or an offset; seconds optional); or
--- nil, msg.
function M.parse_time(s)
  local bad = 'bad time "' .. tostring(s) ..
    '" (ISO 8601 with a zone, like 2026-12-24T18:00Z or 2026-12-24T18:00:00+01:00)'
  local y, mo, d, h, mi, rest = tostring(s):match("^(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d)(.*)$")
  if not y then return nil, bad end
  local sec, frac = 0, 0
  local ss, rest2 = rest:match("^:(%d%d)(.*)$")
  if ss then
    sec, rest = tonumber(ss), rest2
    local f, rest3 = rest:match("^[.,](%d+)(.*)$")
    if f then frac, rest = math.floor(tonumber("0." .. f) * 1000 + 0.5), rest3 end
  end
  local off
  if rest == "Z" or rest == "z" then
    off = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil, bad end
    off = (tonumber(oh) * 60 + tonumber(om)) * (sign == "-" and -1 or 1)
  end
  y, mo, d, h, mi = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then
    return nil, bad
  end
  local days = days_from_civil(y, mo, d)
  return ((days * 24 + h) * 60 + mi - off) * 60000 + sec * 1000 + frac
end

return M

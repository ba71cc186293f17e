--- lash.format: text and JSON renderings of records, events, outcomes and
--- plain Lua values, shared by the REPL and the operator commands.
local M = {}

-- From lash, once first needed (this module also loads without lash.core):
-- its null, and the terminal statuses an outcome can show.
local null, terminal
local function from_lash()
  if terminal then return end
  local ok, lash = pcall(require, "lash")
  null = ok and lash.null or false
  terminal = ok and lash.set_of(lash.TERMINAL) or {}
  terminal.no_longer_retained = true
end

local function lash_null()
  from_lash()
  return null
end

local function is_terminal(status)
  from_lash()
  return terminal[status] == true
end

-- ---------------------------------------------------------------- time

--- "3s", "4m", "2h", "5d" for a duration in ms (negative shows as 0s).
function M.age(ms)
  ms = math.max(0, ms // 1)
  if ms < 1000 then return ms .. "ms" end
  local s = ms // 1000
  if s < 60 then return s .. "s" end
  if s < 3600 then return s // 60 .. "m" end
  if s < 86400 then return s // 3600 .. "h" end
  return s // 86400 .. "d"
end

--- UTC "2024-05-01 12:00:00.123" for ms since the epoch.
function M.time(ms)
  if math.type(ms) ~= "integer" then return tostring(ms) end
  return os.date("!%Y-%m-%d %H:%M:%S", ms // 1000) .. string.format(".%03d", ms % 1000)
end

local UNITS = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000, w = 604800000 }

--- Parses "7d", "90m", "30s", "500ms", "2h", "1w" into ms; a bare number is
--- milliseconds. nil, why when bad.
function M.duration(s)
  local n, unit = tostring(s):match("^(%d+)(%a*)$")
  if not n then
    return nil, 'bad duration "' .. tostring(s) .. '" (like 500 or 500ms, 10s, 30m, 12h, 7d)'
  end
  unit = unit == "" and "ms" or unit
  local k = UNITS[unit]
  if not k then
    return nil, 'bad duration unit "' .. unit .. '" in "' .. s .. '" (ms, s, m, h, d or w)'
  end
  local v = math.tointeger(tonumber(n))
  if not v or v > math.maxinteger // k then return nil, 'duration "' .. s .. '" is too long' end
  return v * k
end

-- ---------------------------------------------------------------- JSON

-- JSON goes through lash.core (jansson underneath): integers exact up to
-- int64 both ways, floats in their shortest exact form, arrays marked by
-- lash.array (what decoding gives) stay arrays even when empty, strings are
-- valid UTF-8 (invalid bytes become U+FFFD), slashes are not escaped.
local core_mod
local function core()
  if core_mod == nil then core_mod = require "lash.core" end
  return core_mod
end

--- One JSON document for v. opts.array: an empty table is [] (else {}
--- unless it is marked with lash.array).
function M.json(v, opts)
  if type(v) == "table" and next(v) == nil and opts and opts.array then return "[]" end
  return core().json_encode(v)
end

--- Decodes a JSON text into a payload: null inside tables becomes lash.null,
--- a top-level null nil; integers stay integers, reals floats.
--- true, value | nil, why (naming the line, column and byte).
function M.from_json(s)
  local ok, v = core().json_decode(s)
  if not ok then return nil, v end
  return true, v
end

-- ------------------------------------------------------------- Lua values

local function is_ident(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local function sort_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if t == "userdata" and v == lash_null() then return "lash.null" end
  if t == "number" and math.type(v) == "float" then
    local s = string.format("%.14g", v)
    if not s:find("[%.eninf]") then s = s .. ".0" end
    return s
  end
  return tostring(v)
end

-- A Lua-like literal: short tables on one line, longer ones indented.
local function value(v, indent, seen, depth)
  if type(v) ~= "table" then return scalar(v) end
  if seen[v] then return "<cycle>" end
  if depth > 8 then return "{...}" end
  if next(v) == nil then return "{}" end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = value(v[i], indent .. "  ", seen, depth + 1) end
  for _, k in ipairs(sort_keys(v)) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      local key = is_ident(k) and k or "[" .. scalar(k) .. "]"
      parts[#parts + 1] = key .. " = " .. value(v[k], indent .. "  ", seen, depth + 1)
    end
  end
  seen[v] = nil
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if #one + #indent <= 78 and not one:find("\n") then return one end
  return "{\n" .. indent .. "  " .. table.concat(parts, ",\n" .. indent .. "  ") ..
    "\n" .. indent .. "}"
end

--- A Lua literal for any value (strings quoted).
function M.value(v)
  return value(v, "", {}, 0)
end

--- Compact one-line JSON-ish text for a payload in a table cell.
function M.payload(v, width)
  if v == nil then return "" end
  local ok, s = pcall(M.json, v)
  if not ok then s = M.value(v) end
  if width and #s > width then s = s:sub(1, width - 3) .. "..." end
  return s
end

-- ------------------------------------------------------------ tables

--- Aligned columns: rows is an array of arrays of strings.
function M.columns(headers, rows)
  local w = {}
  for i, h in ipairs(headers) do w[i] = #h end
  for _, r in ipairs(rows) do
    for i = 1, #headers do w[i] = math.max(w[i], utf8.len(r[i] or "") or #(r[i] or "")) end
  end
  local function line(r)
    local out = {}
    for i = 1, #headers do
      local cell = r[i] or ""
      if i == #headers then
        out[i] = cell
      else
        out[i] = cell .. string.rep(" ", w[i] - (utf8.len(cell) or #cell))
      end
    end
    return (table.concat(out, "  "):gsub("%s+$", ""))
  end
  local lines = { line(headers) }
  for _, r in ipairs(rows) do lines[#lines + 1] = line(r) end
  return table.concat(lines, "\n")
end

-- ------------------------------------------------------------- records

function M.is_record(v)
  return type(v) == "table" and type(v.id) == "string" and type(v.kind) == "string" and
    type(v.status) == "string" and v.created_at ~= nil
end

function M.is_event(v)
  return type(v) == "table" and math.type(v.seq) == "integer" and type(v.type) == "string" and
    v.at ~= nil
end

-- A non-empty array whose every element passes is(element).
local function is_list_of(v, is)
  if type(v) ~= "table" or #v == 0 then return false end
  for i = 1, #v do
    if not is(v[i]) then return false end
  end
  return true
end

function M.is_event_list(v)
  return is_list_of(v, M.is_event)
end

function M.is_record_list(v)
  return is_list_of(v, M.is_record)
end

function M.is_outcome(v)
  return type(v) == "table" and is_terminal(v.status) and v.id == nil and v.kind == nil
end

--- One line for an outcome: "completed {"x":1}", "failed: boom".
function M.outcome(o)
  if type(o) ~= "table" then return tostring(o) end
  local st = o.status
  if st == "completed" then
    if o.value == nil then return "completed" end
    return "completed " .. M.payload(o.value)
  elseif st == "failed" then
    local e = o.error
    local msg = type(e) == "table" and (e.message or "?") or tostring(e)
    local class = type(e) == "table" and e.class
    local suffix = (class and class ~= "error") and (" (" .. class .. ")") or ""
    return "failed: " .. tostring(msg) .. suffix
  elseif st == "cancelled" then
    return "cancelled" .. (o.reason ~= nil and (": " .. tostring(o.reason)) or "")
  elseif st == "abandoned" then
    local who = {}
    if o.writer then who[#who + 1] = "writer " .. tostring(o.writer) end
    if o.owner then who[#who + 1] = "owner " .. tostring(o.owner) end
    return "abandoned" .. (#who > 0 and (" (" .. table.concat(who, ", ") .. ")") or "")
  elseif st == "no_longer_retained" then
    return "no longer retained (was " .. tostring(o.terminal) .. ", pruned " ..
      M.time(o.pruned_at) .. ")"
  end
  return M.payload(o)
end

local function ago(at, now)
  if not now or math.type(at) ~= "integer" then return M.time(at) end
  return M.time(at) .. " (" .. M.age(now - at) .. " ago)"
end

--- An id or name for a terminal: valid UTF-8 as it is, a control
--- character (below 0x20, 0x7f..0x9f) or a byte that is not UTF-8 as \xNN.
function M.text(s)
  if type(s) ~= "string" then return tostring(s) end
  if not s:find("[%z\1-\31\127-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local k = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC2 and 2 or 0
    local ch = k > 0 and s:sub(i, i + k - 1) or ""
    local cp = k > 0 and #ch == k and utf8.len(ch) == 1 and utf8.codepoint(ch)
    if cp and not (cp < 0x20 or (cp >= 0x7f and cp <= 0x9f)) then
      out[#out + 1] = ch
      i = i + k
    else
      out[#out + 1] = string.format("\\x%02x", c)
      i = i + 1
    end
  end
  return table.concat(out)
end

-- What wakes a suspended row (record.wake): "yes: no lease, no body; wakes
-- on event signal.go, the end of order-7, 2026-12-01 12:00:00 (in 5s), or a
-- cancel request".
local function wake_text(w, now)
  w = w or {}
  local parts = {}
  if w.event then parts[#parts + 1] = "event " .. M.text(w.event) end
  if w.process then parts[#parts + 1] = "the end of " .. M.text(w.process) end
  if w.at then
    local when = M.time(w.at)
    if now and math.type(w.at) == "integer" then
      when = when .. (w.at > now and (" (in " .. M.age(w.at - now) .. ")") or " (due)")
    end
    parts[#parts + 1] = when
  end
  local what = #parts > 0 and table.concat(parts, ", ") or "its wake"
  return "yes: no lease, no body; wakes on " .. what .. ", or a cancel request"
end

-- ---- issue 13 (retry): the retry policy, failures so far, the next
-- attempt, a delay and a unique key of a record, as `lash show` rows.
local function when_text(at, now)
  local t = M.time(at)
  if now and math.type(at) == "integer" then
    t = t .. (at > now and (" (in " .. M.age(at - now) .. ")") or " (past)")
  end
  return t
end

local function issue13_rows(r, now, rows)
  local p = r.retry
  if p then
    local function ms(v) return v % 1000 == 0 and M.age(v) or (v .. "ms") end
    local b = "backoff " .. ms(p.initial_ms) .. " x" .. string.format("%g", p.factor)
    if p.max_ms and p.max_ms > 0 then b = b .. ", at most " .. ms(p.max_ms) end
    if p.jitter and p.jitter > 0 then b = b .. ", jitter " .. tostring(p.jitter) end
    rows[#rows + 1] = { "retry", "up to " .. p.max_attempts .. " attempts; " .. b }
  end
  if r.failures then
    rows[#rows + 1] = { "failures", r.failures .. " attempt" .. (r.failures == 1 and "" or "s") ..
      " failed and went on" }
  end
  if r.retry_at then rows[#rows + 1] = { "next attempt", when_text(r.retry_at, now) } end
  if r.run_at then rows[#rows + 1] = { "delayed until", when_text(r.run_at, now) } end
  if r.unique_key then
    rows[#rows + 1] = { "unique key", M.text(r.unique_key) .. (r.unique_for_ms and
      ("  (held " .. M.age(r.unique_for_ms) .. " after its end)") or "") }
  end
end

--- The short aligned block of a process record.
function M.record(r, now)
  local rows = {
    { "id", M.text(r.id) },
    { "kind", M.text(r.kind) },
    { "status", r.status .. (r.cancel_requested and r.status ~= "cancelled"
      and "  (cancel requested)" or "") },
    { "disposition", r.disposition .. (r.max_attempts and
      ("  (max " .. r.max_attempts .. " attempts)") or "") },
  }
  if r.no_worker then -- (issue 11: set by lash show)
    rows[#rows + 1] = { "worker", "none: no worker defines kind " .. M.text(r.kind) ..
      " (lash kinds)" }
  end
  if r.timeout_ms then
    rows[#rows + 1] = { "time budget", M.age(r.timeout_ms) .. " per attempt" }
  end
  local a = r.attempt
  if a then
    rows[#rows + 1] = { "attempt", string.format("%d by %s, fence %d, started %s", a.number,
      tostring(a.owner), a.fence, ago(a.started_at, now)) }
  end
  rows[#rows + 1] = { "input", M.payload(r.input, 200) }
  if r.wait then
    rows[#rows + 1] = { "waiting on", r.wait .. (r.wait_since and
      (" since " .. ago(r.wait_since, now)) or "") }
  end
  if r.suspended then
    rows[#rows + 1] = { "suspended", wake_text(r.wake, now) }
  end
  issue13_rows(r, now, rows)
  if r.outcome then rows[#rows + 1] = { "outcome", M.outcome(r.outcome) } end
  if r.cancel_reason then rows[#rows + 1] = { "cancel reason", tostring(r.cancel_reason) } end
  if r.abandon_request then
    rows[#rows + 1] = { "abandon req.", tostring(r.abandon_request.by) .. ": " ..
      tostring(r.abandon_request.reason) }
  end
  rows[#rows + 1] = { "created", ago(r.created_at, now) }
  rows[#rows + 1] = { "updated", ago(r.updated_at, now) }
  -- last_seq, not a count: a re-registered pruned id continues its sequence
  if r.last_seq then rows[#rows + 1] = { "last event", "seq " .. tostring(r.last_seq) } end
  local width = 0
  for _, row in ipairs(rows) do width = math.max(width, #row[1]) end
  local out = {}
  for _, row in ipairs(rows) do
    out[#out + 1] = string.format("%-" .. (width + 2) .. "s%s", row[1], row[2])
  end
  return table.concat(out, "\n")
end

--- The table of an event list.
-- The replay key of a keyed append (ctx commands' cmd:<n>, eng:signal's
-- opts.key), or nil: the keys lifecycle events are read with ("process:...")
-- follow from their type and are shown by --json only.
local function stored_key(ev)
  local k = ev.key
  if k and not k:find("^process:") then return k end
end

function M.events(list, width)
  local rows, keyed = {}, false
  for _, ev in ipairs(list) do
    local k = stored_key(ev)
    keyed = keyed or k ~= nil
    rows[#rows + 1] = { tostring(ev.seq), M.text(ev.type), M.time(ev.at),
      M.payload(ev.payload, width or 80), k and M.text(k) or "-" }
  end
  local heads = { "SEQ", "TYPE", "AT", "PAYLOAD", "KEY" }
  if not keyed then heads[5] = nil end -- no keyed event: no KEY column
  return M.columns(heads, rows)
end

--- One line per event (events --follow).
function M.event_line(ev)
  local p = M.payload(ev.payload, 120)
  local k = stored_key(ev)
  return string.format("%-4d %-24s %s%s%s", ev.seq, ev.type, M.time(ev.at),
    p ~= "" and ("  " .. p) or "", k and ("  key " .. M.text(k)) or "")
end

--- The `ps` table of a record list.
function M.records(list, now)
  local rows = {}
  for _, r in ipairs(list) do
    rows[#rows + 1] = { M.text(r.id), M.text(r.kind),
      r.status .. (r.no_worker and " (no worker)" or ""),
      r.attempt and tostring(r.attempt.number) or "-",
      now and M.age(now - r.created_at) or M.time(r.created_at) }
  end
  return M.columns({ "ID", "KIND", "STATUS", "ATTEMPT", "AGE" }, rows)
end

--- How the REPL shows a value: records, event lists and outcomes get their
--- own layout, anything else a Lua literal; top-level strings print raw.
function M.repl(v, now)
  if type(v) == "string" then return v end
  if M.is_record(v) then return M.record(v, now) end
  if M.is_event_list(v) then return M.events(v) end
  if M.is_record_list(v) then return M.records(v, now) end
  if M.is_event(v) then return M.event_line(v) end
  if M.is_outcome(v) then return M.outcome(v) end
  return M.value(v)
end

return M

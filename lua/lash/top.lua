--- lash.top: `lash top`, a live view of a store in the terminal.
---
--- Drawn with plain ANSI escapes over termios (core.term_*; the argument
--- for that over ncurses is in bindings/l_observe.c): the alternate screen,
--- the cursor hidden, each frame written from the top-left corner with every
--- line cleared only to its end (no full clear, so no flicker), the
--- terminal put back however it ends. Works over ssh: nothing but bytes on
--- stdout.
---
--- Cheap reads: every frame (default 4 per second) only eng:stats() (the
--- store's meta counters); once a second a few bounded scans (at most
--- SCAN_LIMIT live rows by kind, PAGE rows of failures from a cursor, the
--- first page of pending rows for the backlog's oldest age, the leases of
--- LEASE_LIMIT running rows for the workers' heartbeat when the store has
--- no worker list).
local core = require "lash.core"
local format = require "lash.format"

local M = {}

local SCAN_LIMIT = 2000 -- live rows counted per kind, per second
local PAGE = 500        -- failed rows read per second (from a cursor)
local LEASE_LIMIT = 64  -- leases read per second for the workers' view
local FAILURES = 5      -- latest failures shown
local SPARK = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" }

M.SCAN_LIMIT = SCAN_LIMIT

local TERMINAL = { "completed", "failed", "cancelled", "abandoned" }

local function ended(s)
  local n = 0
  for _, st in ipairs(TERMINAL) do n = n + (s[st] or 0) end
  return n
end

--- The sparkline of `series` (numbers, oldest first).
function M.sparkline(series)
  local max = 0
  for _, v in ipairs(series) do if v > max then max = v end end
  local out = {}
  for i, v in ipairs(series) do
    if max == 0 or v == 0 then
      out[i] = v == 0 and " " or SPARK[1]
    else
      out[i] = SPARK[math.max(1, math.ceil(v / max * #SPARK))]
    end
  end
  return table.concat(out)
end

--- A fresh state: what top remembers between frames.
function M.state()
  return {
    rate = {},          -- rows ended in each of the last 60 seconds (oldest first)
    last_ended = nil,   -- ended total at the last second mark
    last_sec = nil,     -- that mark (ms)
    failures = {},      -- the latest failures {id, kind, at, error}
    fail_after = nil,   -- the failure scan's cursor (an id)
    scanned_at = nil,   -- when the bounded scans last ran (ms)
  }
end

local function first_line(o)
  if type(o) ~= "table" or type(o.error) ~= "table" then return "" end
  return (tostring(o.error.message or o.error.class or ""):match("^[^\n]*"))
end

-- The bounded scans, at most once a second.
local function scan(eng, st, now)
  local live = eng:list { status = "live", limit = SCAN_LIMIT } or {}
  local kinds, order = {}, {}
  for _, r in ipairs(live) do
    local k = kinds[r.kind]
    if not k then
      k = { kind = r.kind }
      kinds[r.kind] = k
      order[#order + 1] = r.kind
    end
    k[r.status] = (k[r.status] or 0) + 1
  end
  table.sort(order)
  st.kinds, st.kind_order, st.kinds_capped = kinds, order, #live >= SCAN_LIMIT
  -- the backlog's oldest: generated ids are time-ordered, so the first page
  -- in id order holds it (a page, not the whole backlog)
  local oldest
  for _, r in ipairs(eng:list { status = "pending", limit = 100 } or {}) do
    if not oldest or r.created_at < oldest then oldest = r.created_at end
  end
  st.oldest_pending = oldest
  -- failures: the next page after the cursor (new generated ids sort last)
  local page = eng:list { status = "failed", limit = PAGE, after = st.fail_after } or {}
  for _, r in ipairs(page) do
    st.failures[#st.failures + 1] = { id = r.id, kind = r.kind, at = r.updated_at,
      error = first_line(r.outcome) }
    st.fail_after = r.id
  end
  table.sort(st.failures, function(a, b) return a.at > b.at end)
  for i = #st.failures, FAILURES + 1, -1 do st.failures[i] = nil end
  -- workers: the store's list when it keeps one, else the holders of the
  -- leases of running rows (their heartbeat: the last renewal)
  local workers = {}
  local defined = nil
  local list = eng:workers()
  if list then
    defined = {}
    for _, w in ipairs(list) do
      workers[#workers + 1] = { owner = w.owner, incarnation = w.incarnation,
        beat = w.heartbeat_at, kinds = w.kinds }
      for _, k in ipairs(w.kinds) do defined[k] = true end
    end
  end
  if defined == nil then
    local by, n = {}, 0
    for _, r in ipairs(live) do
      if r.status == "running" or (r.status == "waiting" and not r.suspended) then
        n = n + 1
        if n > LEASE_LIMIT then break end
        local ls = eng:lease(r.id)
        if ls then
          local key = ls.owner .. "\0" .. ls.incarnation
          local w = by[key]
          if not w then
            w = { owner = ls.owner, incarnation = ls.incarnation, rows = 0, alive = ls.alive }
            by[key] = w
            workers[#workers + 1] = w
          end
          w.rows = w.rows + 1
          w.expires = math.max(w.expires or 0, ls.expires_at)
        end
      end
    end
  end
  st.workers, st.defined = workers, defined
  -- rows waiting for a worker that defines their kind
  if defined then
    local orphan = 0
    for _, r in ipairs(live) do
      if r.status == "pending" and not defined[r.kind] then orphan = orphan + 1 end
    end
    st.orphans = orphan
  else
    st.orphans = nil
  end
  st.scanned_at = now
end

--- One frame's reads: the counters every time, the scans once a second.
function M.sample(eng, st)
  local now = eng:now()
  local s = assert(eng:stats())
  st.stats = s
  st.now = now
  local total = ended(s)
  if st.last_sec == nil then
    st.last_sec, st.last_ended = now, total
  elseif now - st.last_sec >= 1000 then
    local secs = (now - st.last_sec) // 1000
    local per = (total - st.last_ended) / secs
    for _ = 1, math.min(secs, 60) do st.rate[#st.rate + 1] = per end
    while #st.rate > 60 do table.remove(st.rate, 1) end
    st.last_sec = st.last_sec + secs * 1000
    st.last_ended = total
  end
  if st.scanned_at == nil or now - st.scanned_at >= 1000 then scan(eng, st, now) end
  return st
end

-- s cut to `width` characters (UTF-8: the sparkline's blocks, the dashes).
local function fit(s, width)
  local n = utf8.len(s)
  if not n then return s:sub(1, width) end
  if n <= width then return s end
  return s:sub(1, utf8.offset(s, width + 1) - 1)
end

--- The frame's lines (plain text) for the state of M.sample.
function M.lines(st, path, width)
  width = width or 80
  local s, now = st.stats, st.now
  local out = {}
  local function add(l) out[#out + 1] = l end
  add(string.format("lash top — %s — %s   (q quits)", path, format.time(now)))
  add("")
  local parts = {}
  for _, name in ipairs(core.STATUSES) do
    parts[#parts + 1] = string.format("%s %d", name, s[name] or 0)
  end
  add("rows      " .. table.concat(parts, "  "))
  add(string.format("          live %d  suspended %d  total %d", s.live or 0, s.suspended or 0,
    s.total or 0))
  local sum = 0
  for _, v in ipairs(st.rate) do sum = sum + v end
  local last = st.rate[#st.rate] or 0
  add(string.format("ended/s   %-8s last minute %d rows (%.1f/s)", string.format("%.0f", last),
    math.floor(sum), #st.rate > 0 and sum / #st.rate or 0))
  local pad = {}
  for i = 1, 60 - #st.rate do pad[i] = 0 end
  for _, v in ipairs(st.rate) do pad[#pad + 1] = v end
  add("          [" .. M.sparkline(pad) .. "]")
  add(string.format("backlog   %d pending%s%s", s.pending or 0,
    st.oldest_pending and (", oldest " .. format.age(now - st.oldest_pending)) or "",
    st.orphans and st.orphans > 0 and
      string.format(", %d of kinds no live worker defines", st.orphans) or ""))
  add("")
  add(string.format("%-24s %8s %8s %8s%s", "KIND", "pending", "running", "waiting",
    st.kinds_capped and ("   (first " .. SCAN_LIMIT .. " live rows)") or ""))
  for i, k in ipairs(st.kind_order or {}) do
    if i > 8 then
      add(string.format("... %d more kinds", #st.kind_order - 8))
      break
    end
    local c = st.kinds[k]
    add(string.format("%-24s %8d %8d %8d", format.text(k):sub(1, 24), c.pending or 0,
      c.running or 0, c.waiting or 0))
  end
  add("")
  add("WORKERS")
  if #(st.workers or {}) == 0 then add("  (none holding a lease)") end
  for _, w in ipairs(st.workers or {}) do
    local beat
    if w.beat then
      beat = "heartbeat " .. format.age(now - w.beat) .. " ago"
    elseif w.expires then
      beat = (w.expires > now and ("lease expires in " .. format.age(w.expires - now))
        or "lease lapsed") .. (w.alive == false and ", owner gone" or "")
    else
      beat = ""
    end
    add(string.format("  %-28s %s%s", format.text(w.owner), beat,
      w.rows and string.format("  (%d rows)", w.rows) or ""))
  end
  add("")
  add("LATEST FAILURES")
  if #st.failures == 0 then add("  (none)") end
  for _, f in ipairs(st.failures) do
    add(string.format("  %s  %s %s: %s", format.age(now - f.at) .. " ago", format.text(f.kind),
      format.text(f.id), f.error))
  end
  for i, l in ipairs(out) do out[i] = fit(l, width) end
  return out
end

local ESC = "\27["

--- Runs the view until `q` (or Ctrl-C, or a trapped signal of host `h`).
--- opts: interval_ms (default 250), out (a file, default io.stdout).
function M.run(eng, opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local interval = opts.interval_ms or 250
  local h = opts.host
  local ok, why = core.term_raw()
  if not ok then return nil, why end
  out:write(ESC .. "?1049h" .. ESC .. "?25l" .. ESC .. "2J")
  local st = M.state()
  local res = table.pack(pcall(function()
    while true do
      M.sample(eng, st)
      local rows, cols = core.term_size()
      local lines = M.lines(st, eng:path(), cols)
      local buf = { ESC .. "H" }
      for i, l in ipairs(lines) do
        if i > rows then break end
        buf[#buf + 1] = l .. ESC .. "K" .. (i < rows and "\r\n" or "")
      end
      buf[#buf + 1] = ESC .. "J"
      out:write(table.concat(buf))
      out:flush()
      local key = core.term_key(interval)
      if key and (key:find("q", 1, true) or key:find("Q", 1, true) or key:find("\3", 1, true)) then
        return
      end
      if h and h.signal() then return end
    end
  end))
  core.term_restore()
  out:write(ESC .. "?25h" .. ESC .. "?1049l")
  out:flush()
  if not res[1] then error(res[2], 0) end
  return true
end

return M

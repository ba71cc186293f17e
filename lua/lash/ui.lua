--- lash.ui: the local web UI of `lash ui` (routes, JSON, the embedded page).
--
-- Served by core.http_listen on the engine's loop. The page (ui/index.html,
-- ui/app.js, ui/app.css: embedded in the lash executable as lash.assets,
-- read from the source tree under stock lua5.4) calls the JSON endpoints
-- under /api/; an error is {error = message, code = CODE} with a 4xx/5xx
-- status. Reads answer at once; writes (signal, cancel, retry) run in a
-- coroutine of eng:spawn and answer when they committed.
--
-- Access: on a loopback address any local client may use it, and a Host
-- header that is not a loopback name is refused (DNS rebinding); on any
-- other address every request must carry the access token printed at start
-- (the printed link ?token=... sets it as a cookie). Writes must be POSTs
-- with Content-Type application/json, which a cross-site form cannot send.
local core = require "lash.core"
local metrics = require "lash.metrics"

local M = {}

local STATUSES = core.STATUSES
local TERMINAL = {}
for _, s in ipairs(core.TERMINAL) do TERMINAL[s] = true end

local JSON = "application/json; charset=utf-8"
local MIME = { html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8",
  css = "text/css; charset=utf-8", png = "image/png", svg = "image/svg+xml" }

-- ------------------------------------------------------------- assets

local assets_cache
--- The page's files: {name = content}; the executable's embedded copy, else
--- the ui/ folder of the source tree this module was loaded from.
function M.assets()
  if assets_cache then return assets_cache end
  local ok, embedded = pcall(require, "lash.assets")
  if ok and type(embedded) == "table" then
    assets_cache = embedded
    return embedded
  end
  local path = package.searchpath("lash.ui", package.path) or ""
  local root = path:gsub("lua/lash/ui%.lua$", "")
  local files = {}
  for _, name in ipairs { "index.html", "app.js", "app.css" } do
    local f = io.open(root .. "ui/" .. name, "rb")
    if f then
      files[name] = f:read("a")
      f:close()
    end
  end
  assets_cache = files
  return files
end

-- --------------------------------------------------------------- JSON

local function json(v)
  local ok, s = pcall(core.json_encode, v)
  if ok then return s end
  return core.json_encode({ error = "cannot encode: " .. tostring(s) })
end

-- A payload as JSON-able: binary strings or odd tables become their text.
local function safe(v)
  local ok = pcall(core.json_encode, v)
  if ok then return v end
  return tostring(v)
end

local function err(reply, status, msg, code)
  core.http_respond(reply, status, JSON, json({ error = msg, code = code }))
end

local function ok_json(reply, v)
  core.http_respond(reply, 200, JSON, json(v))
end

-- -------------------------------------------------------- the overview

-- The summary walk costs a read of every row: it is reused until it is
-- older than twenty times what it took (at least two seconds), so polling
-- the page keeps the walk under a twentieth of a core. The counts per
-- status (eng:stats(), the store's counters) are read on every request.
local function summary_of(st)
  local now = st.eng:now()
  local c = st.summary
  if c and now - c.at < math.max(2000, 20 * c.took) then return c.snap end
  local t0 = now
  local snap, msg, code = metrics.snapshot(st.eng)
  if not snap then return nil, msg, code end
  st.summary = { snap = snap, at = t0, took = st.eng:now() - t0 }
  return snap
end

local function terminal_count(s)
  local n = 0
  for st in pairs(TERMINAL) do n = n + (s[st] or 0) end
  return n
end

-- Throughput: samples {at, ended} at most one a second, kept for a minute.
local function sample(st, now, ended)
  local ss = st.samples
  local last = ss[#ss]
  if not last or now - last.at >= 1000 then
    ss[#ss + 1] = { at = now, ended = ended }
    while #ss > 61 do table.remove(ss, 1) end
  end
  local first = ss[1]
  local rate = 0
  if first and now > first.at then rate = (ended - first.ended) * 1000 / (now - first.at) end
  local spark = {}
  for i = 2, #ss do
    local dt = ss[i].at - ss[i - 1].at
    spark[#spark + 1] = dt > 0 and (ss[i].ended - ss[i - 1].ended) * 1000 / dt or 0
  end
  return math.max(0, rate), spark
end

local function overview(st)
  local eng = st.eng
  local s, msg, code = eng:stats()
  if not s then return nil, msg, code end
  local snap
  snap, msg, code = summary_of(st)
  if not snap then return nil, msg, code end
  local now = eng:now()
  local counts = {}
  for _, name in ipairs(STATUSES) do counts[name] = s[name] end
  local kinds = {}
  for _, k in ipairs(snap.kinds) do
    local row = { kind = k.kind,
      oldest_pending_at = k.oldest_pending_at > 0 and k.oldest_pending_at or nil }
    for _, name in ipairs(STATUSES) do row[name] = k[name] end
    kinds[#kinds + 1] = row
  end
  local rate, spark = sample(st, now, terminal_count(s))
  return {
    now = now, counts = counts, live = s.live, total = s.total, suspended = s.suspended,
    backlog = s.pending, oldest_pending_age_ms = snap.oldest_pending_at and
      math.max(0, now - snap.oldest_pending_at) or nil,
    kinds_at = snap.now, kinds = core.array(kinds), throughput = rate,
    spark = core.array(spark), statuses = STATUSES, store = eng:path(),
    can_retry = st.can_retry,
  }
end

-- ------------------------------------------------------------- the list

local LIST_MAX, SCAN_MAX = 200, 20000

local function row_of(r)
  return { id = r.id, kind = r.kind, status = r.status, created_at = r.created_at,
    updated_at = r.updated_at, attempt = r.attempt and r.attempt.number or 0,
    parent = r.parent, wait = r.wait }
end

local function list(st, q)
  local limit = math.tointeger(tonumber(q.limit or "50"))
  if not limit or limit < 1 or limit > LIST_MAX then
    return nil, "limit must be an integer 1.." .. LIST_MAX, "EINVAL"
  end
  local status = q.status ~= "" and q.status or nil
  local kind = q.kind ~= "" and q.kind or nil
  local text = q.q ~= "" and q.q or nil
  local after = q.after ~= "" and q.after or nil
  local rows, scanned, cursor, more = {}, 0, after, false
  while true do
    local page, msg, code = st.eng:list { status = status, kind = kind, after = cursor,
      limit = text and 500 or limit + 1 - #rows }
    if not page then return nil, msg, code end
    for _, r in ipairs(page) do
      scanned = scanned + 1
      cursor = r.id
      if not text or r.id:find(text, 1, true) then
        if #rows == limit then
          more = true
          break
        end
        rows[#rows + 1] = row_of(r)
      end
    end
    if more or #page == 0 or not text or scanned >= SCAN_MAX then
      if text and scanned >= SCAN_MAX and #page > 0 then more = true end
      break
    end
  end
  local next_after
  if more then next_after = #rows > 0 and rows[#rows].id or cursor end
  if text and more and #rows < limit then next_after = cursor end
  return { rows = core.array(rows), next = next_after, scanned = scanned }
end

-- ---------------------------------------------------- one process

local CHILD_MAX = 200

local function events_of(eng, id)
  local all, after = {}, 0
  while true do
    local page, msg, code = eng:events(id, after, 1000)
    if not page then return nil, msg, code end
    for _, ev in ipairs(page) do
      all[#all + 1] = { seq = ev.seq, type = ev.type, at = ev.at, key = ev.key,
        payload = safe(ev.payload) }
      after = ev.seq
    end
    if #page < 1000 then return all end
  end
end

-- The children of id from its process.child events, depth-first, each
-- {id, kind, status, created_at, updated_at, children}.
local function children_of(eng, evs, budget, depth)
  local out = {}
  for _, ev in ipairs(evs) do
    if ev.type == "process.child" and type(ev.payload) == "table" and ev.payload.id then
      if budget.n <= 0 then
        out[#out + 1] = { id = ev.payload.id, kind = ev.payload.kind, more = true }
        break
      end
      budget.n = budget.n - 1
      local r = eng:get(ev.payload.id)
      local node = r and row_of(r) or
        { id = ev.payload.id, kind = ev.payload.kind, status = "pruned" }
      if r and depth < 6 then
        local cevs = events_of(eng, r.id)
        if cevs then node.children = children_of(eng, cevs, budget, depth + 1) end
      end
      out[#out + 1] = node
    end
  end
  return core.array(out)
end

local function process(st, q)
  local eng = st.eng
  local id = q.id
  if not id or id == "" then return nil, "give ?id=PROCESS_ID", "EINVAL" end
  local r, msg, code = eng:get(id)
  if not r then return nil, msg, code end
  local evs
  evs, msg, code = events_of(eng, id)
  if not evs then return nil, msg, code end
  local rec = {}
  for k, v in pairs(r) do rec[k] = safe(v) end
  return { record = rec, events = core.array(evs), now = eng:now(),
    terminal = TERMINAL[r.status] or false,
    children = children_of(eng, evs, { n = CHILD_MAX }, 1), can_retry = st.can_retry }
end

-- -------------------------------------------------------------- writes

local function decode_body(req)
  if req.body == "" then return {} end
  local ok, good, val = pcall(core.json_decode, req.body)
  if not ok or not good or type(val) ~= "table" then return nil end
  return val
end

local WRITES = {}

function WRITES.signal(eng, b)
  if type(b.id) ~= "string" or type(b.name) ~= "string" or b.name == "" then
    return nil, "give {id, name, payload}", "EINVAL"
  end
  local payload = b.payload
  if payload == core.null then payload = nil end
  local seq, msg, code = eng:signal(b.id, b.name, payload)
  if not seq then return nil, msg, code end
  return { seq = seq }
end

function WRITES.cancel(eng, b)
  if type(b.id) ~= "string" then return nil, "give {id, reason}", "EINVAL" end
  local reason = type(b.reason) == "string" and b.reason ~= "" and b.reason or
    "cancelled from the UI"
  local seq, msg, code = eng:cancel(b.id, reason)
  if not seq then return nil, msg, code end
  return { seq = seq }
end

function WRITES.retry(eng, b)
  if type(b.id) ~= "string" then return nil, "give {id}", "EINVAL" end
  if type(eng.retry) ~= "function" then return nil, "this lash has no eng:retry", "ENOTSUP" end
  local res, msg, code = eng:retry(b.id)
  if not res then return nil, msg, code end
  return { ok = true, result = safe(res) }
end

local STATUS_OF = { EINVAL = 400, ENOENT = 404, ECONFLICT = 409, ENOTSUP = 501, EACCES = 403 }

-- ---------------------------------------------------------------- access

local function is_loopback(addr)
  local host = addr:match("^%[(.*)%]:%d+$") or addr:match("^(.*):%d+$") or addr
  return host == "localhost" or host == "::1" or host:match("^127%.") ~= nil
end

local function cookie(req, name)
  local c = req.headers.cookie or ""
  for k, v in c:gmatch("([^=;%s]+)=([^;]*)") do
    if k == name then return v end
  end
end

local function random_token()
  local f = io.open("/dev/urandom", "rb")
  local raw = f and f:read(16) or tostring(os.time()) .. tostring({})
  if f then f:close() end
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- Constant-time comparison of two strings.
local function same(a, b)
  if type(a) ~= "string" or #a ~= #b then return false end
  local d = 0
  for i = 1, #a do d = d | (a:byte(i) ~ b:byte(i)) end
  return d == 0
end

-- nil when the request may go on, else status, message.
local function denied(st, req)
  if st.token then
    local t = req.query.token or cookie(req, "lash_token") or
      (req.headers.authorization or ""):match("^Bearer%s+(%S+)$")
    if not same(t, st.token) then
      return 401, "this UI needs its access token (printed by lash ui): open the printed link"
    end
  else
    local host = (req.headers.host or ""):gsub(":%d+$", "")
    if host ~= "" and host ~= "localhost" and host ~= "[::1]" and not host:match("^127%.") then
      return 403, 'Host "' .. host .. '" is not a loopback name: open http://' .. st.address .. "/"
    end
  end
end

-- ---------------------------------------------------------------- routes

local READS = { ["/api/overview"] = overview, ["/api/list"] = list, ["/api/process"] = process }

local function handle(st, req, reply)
  local status, why = denied(st, req)
  if status then return err(reply, status, why, status == 401 and "EACCES" or "EACCES") end
  local path = req.path
  if req.query.token and st.token and req.method == "GET" and not path:match("^/api/") then
    -- the printed link: keep the token as a cookie, drop it from the URL
    return core.http_respond(reply, 303, "text/plain", "see /\n",
      { "Location: " .. path, "Set-Cookie: lash_token=" .. st.token ..
        "; Path=/; HttpOnly; SameSite=Strict" })
  end
  local read = READS[path]
  if read then
    if req.method ~= "GET" then return err(reply, 405, path .. " takes GET", "EINVAL") end
    local res, msg, code = read(st, req.query)
    if not res then return err(reply, STATUS_OF[code] or 500, tostring(msg), code) end
    return ok_json(reply, res)
  end
  local wname = path:match("^/api/(%a+)$")
  local write = wname and WRITES[wname]
  if write then
    if req.method ~= "POST" then return err(reply, 405, path .. " takes POST", "EINVAL") end
    if not (req.headers["content-type"] or ""):match("^application/json") then
      return err(reply, 415, path .. " takes a JSON body (Content-Type: application/json)",
        "EINVAL")
    end
    local body = decode_body(req)
    if not body then return err(reply, 400, "the body is not a JSON object", "EINVAL") end
    -- writes wait for their commit: in a coroutine of the engine
    st.eng:spawn(function()
      local ok, res, msg, code = pcall(write, st.eng, body)
      if not ok then return err(reply, 500, tostring(res), "EINTERNAL") end
      if not res then return err(reply, STATUS_OF[code] or 500, tostring(msg), code) end
      ok_json(reply, res)
    end)
    return
  end
  if path:match("^/api/") then return err(reply, 404, "no endpoint " .. path, "ENOENT") end
  if req.method ~= "GET" and req.method ~= "HEAD" then
    return err(reply, 405, "pages take GET", "EINVAL")
  end
  local files = M.assets()
  local name = path == "/" and "index.html" or path:match("^/assets/([%w%-%.]+)$")
  local body = name and files[name]
  if not body then return err(reply, 404, "no page " .. path, "ENOENT") end
  core.http_respond(reply, 200, MIME[name:match("%.(%w+)$")] or "application/octet-stream", body)
end

--- Serves the UI of eng at addr: server | nil, msg, code. opts.say(line)
--- gets the lines to print (the address, and the token when one is needed);
--- opts.token fixes the token (tests).
function M.serve(eng, addr, opts)
  opts = opts or {}
  local st = { eng = eng, samples = {}, can_retry = type(eng.retry) == "function" }
  if not is_loopback(addr) then st.token = opts.token or random_token() end
  local srv, msg, code = core.http_listen(eng, addr, function(req, reply)
    handle(st, req, reply)
  end)
  if not srv then return nil, msg, code end
  st.address = srv:address()
  local say = opts.say or function() end
  if st.token then
    say("lash ui on http://" .. st.address .. "/?token=" .. st.token)
    say("access token: " .. st.token .. " (every request needs it: the link sets a cookie)")
  else
    say("lash ui on http://" .. st.address .. "/")
  end
  return srv
end

return M

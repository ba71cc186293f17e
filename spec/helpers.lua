-- spec/helpers.lua - shared utilities for the busted specs.
--
-- Temp stores (one per test, removed in after_each through helpers.cleanup),
-- engines opened through helpers.open (closed by cleanup), worker OS
-- processes started with helpers.spawn_worker (killed by cleanup if still
-- alive), and loop-driving waits.
local M = {}

local ok_uv, uv = pcall(require, "luv")
if not ok_uv then uv = nil end

-- Repository root: the directory above this file.
do
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/spec/helpers%.lua$")
  if not dir or dir == "" then dir = "." end
  if dir:sub(1, 1) ~= "/" then
    local pwd = os.getenv("PWD") or io.popen("pwd"):read("l")
    dir = dir == "." and pwd or (pwd .. "/" .. dir)
  end
  M.root = dir
end

local dirs, engines, pids = {}, {}, {}

function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function M.sleep_ms(ms)
  if uv then
    uv.sleep(math.floor(ms))
  else
    os.execute("sleep " .. string.format("%.3f", ms / 1000))
  end
end

-- Wall-clock milliseconds (same clock the engine stamps records with).
function M.now_ms()
  if uv and uv.gettimeofday then
    local s, us = uv.gettimeofday()
    return s * 1000 + us // 1000
  end
  return os.time() * 1000
end

-- Monotonic milliseconds, for measuring elapsed time.
function M.mono_ms()
  if uv then return uv.hrtime() / 1e6 end
  return os.clock() * 1000
end

-- A fresh, empty temp directory (tracked; removed by cleanup).
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. M.q(p)), "mkdir " .. p)
  dirs[#dirs + 1] = p
  return p
end

function M.rm_rf(path)
  if path and path ~= "" and path ~= "/" then
    os.execute("rm -rf " .. M.q(path))
  end
end

-- The backend under test: $LASH_TEST_TARGET (postgresql://…) runs every
-- spec on PostgreSQL, each store in a schema of its own; unset or empty:
-- LMDB, each store in a fresh temp dir.
M.target = os.getenv("LASH_TEST_TARGET")
if M.target == "" then M.target = nil end
if M.target ~= nil and not M.target:match("^postgres") then
  -- (anything else would become an LMDB directory named after it, here)
  error("LASH_TEST_TARGET must be a postgresql://... URL (unset: LMDB), got " .. M.target)
end
M.pg = M.target ~= nil
local schemas = 0

-- A store target nobody used yet: a path inside a fresh temp dir (the store
-- dir itself does not exist yet: lash.open creates it), or a new schema.
function M.store_path()
  if M.pg then
    schemas = schemas + 1
    local tmp = os.tmpname() -- a name unique on this machine
    os.remove(tmp)
    local sep = M.target:find("?", 1, true) and "&" or "?"
    return string.format("%s%sschema=s_%s_%d", M.target, sep,
                         tmp:match("([%w]+)$"):lower(), schemas)
  end
  return M.tmpdir() .. "/store"
end

-- Inside a test: on PostgreSQL, marks it pending through busted's
-- `pending` (the test is about LMDB's files or directories) and returns
-- true; the test returns at once.
function M.lmdb_only(pending)
  if M.pg then
    pending("LMDB only")
    return true
  end
  return false
end

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.lines(path)
  local out = {}
  local s = M.read_file(path)
  if s then
    for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  end
  return out
end

-- lash.open with test defaults (durability "none" unless given); the engine
-- is closed by cleanup.
function M.open(dir, opts)
  local lash = require "lash"
  local o = { durability = "none" }
  for k, v in pairs(opts or {}) do o[k] = v end
  local eng, msg, code = lash.open(dir or M.store_path(), o)
  assert(eng, "lash.open failed: " .. tostring(msg) .. " " .. tostring(code))
  engines[#engines + 1] = eng
  return eng
end

-- Starts `lua5.4 spec/workers/<script>.lua args...` as a separate OS process
-- in the background, output appended to `log` (or /dev/null: the worker may
-- log into the same file). `wrap` (optional) is a shell command prefix the
-- worker is run under (one that execs its arguments, so that the pid is
-- the worker's: `ip netns exec NS ...`). Returns its pid.
function M.spawn_worker(script, args, log, wrap)
  local parts = {}
  for i, a in ipairs(args or {}) do parts[i] = M.q(a) end
  local path = M.root .. "/spec/workers/" .. script .. ".lua"
  local cmd = string.format(
    "cd %s && exec %s env LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s >>%s 2>&1 </dev/null",
    M.q(M.root), wrap or "", M.q(package.path), M.q(package.cpath), M.q(path),
    table.concat(parts, " "), M.q(log or "/dev/null"))
  cmd = "(" .. cmd .. ") & echo $!"
  local p = assert(io.popen("sh -c " .. M.q(cmd), "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start worker " .. script)
  pids[#pids + 1] = pid
  return pid
end

function M.kill(pid, sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig or "KILL", pid))
end

-- True while pid exists and is not a zombie (orphans may stay unreaped).
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local s = f:read("a") or ""
  f:close()
  local state = s:match("%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

function M.wait_exit(pid, timeout_ms)
  local deadline = M.mono_ms() + (timeout_ms or 10000)
  while M.alive(pid) do
    if M.mono_ms() > deadline then return false end
    M.sleep_ms(10)
  end
  return true
end

-- Polls fn (no engine loop) until it returns truthy or timeout_ms passes.
function M.poll(fn, timeout_ms, step_ms)
  local deadline = M.mono_ms() + (timeout_ms or 5000)
  while true do
    local v = fn()
    if v then return v end
    if M.mono_ms() > deadline then return false end
    M.sleep_ms(step_ms or 10)
  end
end

-- Drives eng's loop with eng:run_once() (and eng:drive() first when
-- opts.drive) until fn() is truthy or timeout_ms passes. Returns fn's value
-- or false.
function M.wait_until(eng, fn, timeout_ms, opts)
  local deadline = M.mono_ms() + (timeout_ms or 5000)
  while true do
    local v = fn()
    if v then return v end
    if M.mono_ms() > deadline then return false end
    if opts and opts.drive then eng:drive() end
    local t0 = M.mono_ms()
    eng:run_once()
    if M.mono_ms() - t0 < 1 then M.sleep_ms(2) end
  end
end

-- Runs the loop for about ms milliseconds (drive each turn if opts.drive).
function M.run_for(eng, ms, opts)
  M.wait_until(eng, function() return false end, ms, opts)
end

-- Drives until row id is parked (status "waiting"). run{until_idle=true}
-- would also wait for the timers of the body's awaits.
function M.park(eng, id, timeout_ms)
  return M.wait_until(eng, function()
    local r = eng:get(id)
    return r ~= nil and r.status == "waiting"
  end, timeout_ms or 5000, { drive = true })
end

-- Defines the kinds of spec/workers/victim.lua on eng with bodies that
-- count their runs per id (the table returned) and return {worker, attempt}.
function M.define_victim_kinds(eng, worker)
  local executed = {}
  local function body(ctx)
    executed[ctx.id] = (executed[ctx.id] or 0) + 1
    return { worker = worker, attempt = ctx.attempt }
  end
  eng:define("slow_rr", body)
  eng:define("slow_ob", body, { disposition = "owner_bound" })
  eng:define("slow_lim", body)
  return executed
end

-- The record's status, or nil.
function M.status(eng, id)
  local r = eng:get(id)
  return r and r.status
end

local TERMINAL = { completed = true, failed = true, cancelled = true, abandoned = true }
M.TERMINAL = TERMINAL

function M.is_terminal(eng, id)
  local r = eng:get(id)
  return r ~= nil and TERMINAL[r.status] == true
end

-- Events of id of the given type.
function M.events_of(eng, id, etype)
  local out = {}
  for _, ev in ipairs(assert(eng:events(id, 0))) do
    if ev.type == etype then out[#out + 1] = ev end
  end
  return out
end

-- Number of rows in the store, via eng:list{}.
function M.count_rows(eng)
  return #assert(eng:list {})
end

-- Asserts that fn raises an error whose message mentions `word`.
function M.raises_naming(fn, word)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error naming '" .. word .. "', but the call returned")
  local msg = tostring(err)
  assert(msg:find(word, 1, true),
    "expected the error to name '" .. word .. "', got: " .. msg)
  return msg
end

-- Asserts an invalid value is refused: either raised naming `word`, or
-- returned as nil, msg, "EINVAL".
function M.refuses(fn, word)
  local ok, a, b, c = pcall(fn)
  if not ok then
    local msg = tostring(a)
    assert(msg:find(word, 1, true),
      "expected the error to name '" .. word .. "', got: " .. msg)
    return
  end
  assert(a == nil, "expected a refusal of a bad '" .. word .. "', got " .. tostring(a))
  assert(c == "EINVAL", "expected code EINVAL, got " .. tostring(c) .. " (" .. tostring(b) .. ")")
end

-- Asserts r1,r2,r3 are nil, msg, code (and msg mentions `mention` if given).
function M.fails(code, mention, r1, r2, r3)
  assert(r1 == nil, "expected nil, " .. code .. "; got " .. tostring(r1))
  assert(type(r2) == "string" and #r2 > 0, "expected a message, got " .. tostring(r2))
  assert(r3 == code, "expected code " .. code .. ", got " .. tostring(r3) .. " (" .. r2 .. ")")
  if mention then
    assert(r2:find(mention, 1, true),
      "expected the message to mention '" .. mention .. "', got: " .. r2)
  end
end

-- Deep copy-free structural equality (lash.null compares by identity).
function M.deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    if type(a) == "number" and type(b) == "number" then
      return math.type(a) == math.type(b) and a == b
    end
    return false
  end
  for k, v in pairs(a) do
    if not M.deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

function M.cleanup()
  for _, pid in ipairs(pids) do
    if M.alive(pid) then
      M.kill(pid, "CONT")
      M.kill(pid, "KILL")
    end
  end
  pids = {}
  for i = #engines, 1, -1 do
    pcall(engines[i].close, engines[i])
  end
  engines = {}
  collectgarbage()
  for _, d in ipairs(dirs) do M.rm_rf(d) end
  dirs = {}
end

-- The build's lash executable ($LASH_BIN wins).
local function lash_bin() return os.getenv("LASH_BIN") or (M.root .. "/build/bindings/lash") end

-- Writes @p text to a fresh kinds.lua (for `lash worker --load`); its path.
function M.kinds_file(text)
  local p = M.tmpdir() .. "/kinds.lua"
  M.write_file(p, text)
  return p
end

-- Starts `lash --db DB worker ARGS...` in the background, stdout and stderr
-- into w.log: a handle with pid, log, wait(ms) -> exit code (nil when it
-- did not exit within ms, default @p wait_ms), text(), line(pat, ms) ->
-- the first log line matching pat, kill(sig).
function M.cli_worker(db, args, wait_ms)
  local dir = M.tmpdir()
  local parts = {}
  for i, a in ipairs(args) do parts[i] = M.q(a) end
  local script = string.format("%s --db %s worker %s >%s/log 2>&1 </dev/null & echo $! >%s/pid; " ..
    "wait $!; echo $? >%s/rc", M.q(lash_bin()), M.q(db), table.concat(parts, " "), M.q(dir),
    M.q(dir), M.q(dir))
  os.execute("sh -c " .. M.q(script) .. " >/dev/null 2>&1 &")
  local pid = M.poll(function() return tonumber(M.read_file(dir .. "/pid") or "") end, 5000)
  assert(pid, "the worker did not start")
  local w = { pid = pid, log = dir .. "/log" }
  function w.wait(ms)
    return M.poll(function() return tonumber(M.read_file(dir .. "/rc") or "") end,
      ms or wait_ms or 5000) or nil
  end
  function w.text() return M.read_file(w.log) or "" end
  function w.line(pat, ms)
    return M.poll(function()
      for _, l in ipairs(M.lines(w.log)) do
        if l:find(pat) then return l end
      end
    end, ms or 15000)
  end
  function w.kill(sig) M.kill(pid, sig) end
  return w
end

-- Runs `lash --db DB ARGS...` (the build's executable, $LASH_BIN) with no
-- input; returns the exit code, stdout and stderr.
function M.cli(db, ...)
  local bin = lash_bin()
  local dir = M.tmpdir()
  local parts = { M.q(bin), "--db", M.q(db) }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = M.q(a) end
  local cmd = table.concat(parts, " ") .. " >" .. dir .. "/out 2>" .. dir .. "/err </dev/null"
  local _, _, code = os.execute(cmd)
  return code, M.read_file(dir .. "/out") or "", M.read_file(dir .. "/err") or ""
end

return M

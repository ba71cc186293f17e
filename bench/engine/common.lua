-- bench/engine/common.lua - helpers shared by the engine benchmark scripts.
-- Loaded with dofile(<this dir> .. "common.lua"); not a module on LUA_PATH.
local M = {}

-- Directory of the running script ("" + "/"), for dofile and sibling scripts.
function M.script_dir()
  local src = arg and arg[0] or ""
  return src:match("^(.*/)") or "./"
end

-- The Lua interpreter that runs us (to start a worker OS process).
function M.lua_bin()
  local i, bin = -1, nil
  while arg and arg[i] do
    bin = arg[i]
    i = i - 1
  end
  return bin or "lua5.4"
end

-- A monotonic wall clock in microseconds: luv.hrtime() first, then
-- lash.core.now_us if lash exposes one. os.clock is CPU time: never used.
local now_us
do
  local ok, uv = pcall(require, "luv")
  if ok and type(uv) == "table" and uv.hrtime then
    local hrtime = uv.hrtime
    now_us = function() return hrtime() / 1000 end
  else
    local okc, core = pcall(require, "lash.core")
    if okc and type(core) == "table" and type(core.now_us) == "function" then
      now_us = core.now_us
    else
      error("no monotonic clock: neither luv.hrtime nor lash.core.now_us")
    end
  end
end
M.now_us = now_us

function M.verbose() return os.getenv("LASH_BENCH_VERBOSE") ~= nil end

-- A note on stderr, shown only with LASH_BENCH_VERBOSE set.
function M.note(fmt, ...)
  if M.verbose() then
    io.stderr:write("  [bench] ", string.format(fmt, ...), "\n")
  end
end

function M.shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A fresh temporary store directory (the engine creates the store in it).
function M.tmpdir(tag)
  local base = os.getenv("TMPDIR") or "/tmp"
  local p = assert(io.popen("mktemp -d " .. M.shquote(base .. "/lash-bench-" .. tag .. "-XXXXXX")))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir
end

function M.rmdir(dir)
  if dir and dir:match("/lash%-bench%-") then
    os.execute("rm -rf " .. M.shquote(dir))
  end
end

-- Runs fn(dir) with a fresh store directory and removes it afterwards, also
-- when fn raises (the error is re-raised with its traceback).
-- Runs fn(target) on a fresh store: a temp dir, or with LASH_BENCH_TARGET
-- (postgresql://…) a new schema of that database.
function M.with_store(tag, fn)
  local base = os.getenv("LASH_BENCH_TARGET")
  if base and base ~= "" then
    local tmp = os.tmpname()
    os.remove(tmp)
    local target = ("%s%sschema=bench_%s_%s"):format(base, base:find("?", 1, true) and "&" or "?",
      tag:gsub("[^%w]", "_"):lower(), tmp:match("([%w]+)$"):lower())
    local ok, err = xpcall(fn, debug.traceback, target)
    if not ok then error(err, 0) end
    return err
  end
  local dir = M.tmpdir(tag)
  local ok, err = xpcall(fn, debug.traceback, dir)
  M.rmdir(dir)
  if not ok then error(err, 0) end
  return err
end

-- Checks an API result that follows `value | nil, message, code`.
function M.check(what, v, msg, code, ...)
  if v == nil then
    error(string.format("%s: got nil, %s, %s", what, tostring(msg), tostring(code)), 2)
  end
  return v, msg, code, ...
end

-- Count of @p status in eng:stats() (tolerates a flat table or a
-- sub-table: counts / status / by_status / statuses).
function M.count(st, status)
  if type(st) ~= "table" then return nil end
  if type(st[status]) == "number" then return st[status] end
  for _, k in ipairs({ "counts", "status", "by_status", "statuses" }) do
    local t = st[k]
    if type(t) == "table" and type(t[status]) == "number" then return t[status] end
  end
  return nil
end

-- Engine counter (bodies parked etc.) from eng:stats(), wherever it lives.
function M.engine_stat(st, name)
  if type(st) ~= "table" then return nil end
  if type(st[name]) == "number" then return st[name] end
  for _, k in ipairs({ "engine", "bodies" }) do
    local t = st[k]
    if type(t) == "table" and type(t[name]) == "number" then return t[name] end
  end
  return nil
end

function M.stats(eng)
  return M.check("eng:stats()", eng:stats())
end

-- lash.open(dir, opts); with @p max_bytes set, asks for that store size limit
-- (option max_bytes) and falls back to the default when open refuses it.
function M.open(lash, dir, opts, max_bytes)
  if max_bytes then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.max_bytes = max_bytes
    local ok, eng, msg, code = pcall(lash.open, dir, o)
    if ok and eng ~= nil then return eng end
    M.note("lash.open(%q, {max_bytes=%d}) -> %s %s %s; retrying without max_bytes", dir, max_bytes,
      tostring(ok and "nil" or "raised"), tostring(ok and msg or eng), tostring(code))
  end
  local eng, msg, code = lash.open(dir, opts)
  if eng == nil then
    error(("lash.open(%q): nil, %s, %s"):format(dir, tostring(msg), tostring(code)), 2)
  end
  return eng
end

-- VmRSS of this OS process in KiB, and its anonymous part (heap, stacks:
-- not the store's pages mapped from the file, which the kernel can drop).
function M.rss_kib()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)%s*kB")), tonumber(s:match("RssAnon:%s*(%d+)%s*kB"))
end

-- p in [0, 100] of an array of numbers (sorted in place).
function M.percentile(xs, p)
  table.sort(xs)
  local n = #xs
  if n == 0 then return 0 / 0 end
  local i = math.ceil(p / 100 * n)
  if i < 1 then i = 1 end
  return xs[i]
end

-- Registers n rows of @p kind (ids idfmt:format(i), or idfmt(i) when a
-- function; input input_of(i); start options opts_of(i), a fresh table,
-- when given) in eng:batch chunks. The kind is only defined here (with
-- @p body) when the engine refuses to start an undefined kind; the rows
-- carry disposition "rerunnable" unless opts_of says otherwise. Returns the
-- number registered.
function M.register(eng, kind, n, idfmt, input_of, body, chunk, opts_of)
  chunk = chunk or 5000
  input_of = input_of or function(i) return i end
  local opts = { disposition = "rerunnable" }
  local idof = idfmt
  if type(idfmt) ~= "function" then idof = function(i) return idfmt:format(i) end end
  local function start(i)
    if opts_of then
      opts = opts_of(i)
      opts.disposition = opts.disposition or "rerunnable"
    end
    opts.id = idof(i)
    return eng:start(kind, input_of(i), opts)
  end
  if n < 1 then return 0 end
  -- Probe with the first row alone: does start need a local definition?
  local ok, id, msg, code = pcall(start, 1)
  if not ok or id == nil then
    M.note("start(%q) undefined -> %s %s %s; defining %q here", kind,
      tostring(ok and "nil" or "raised"), tostring(ok and msg or id), tostring(code), kind)
    eng:define(kind, body or function(_, input) return input end, { disposition = "rerunnable" })
    M.check(("eng:start(%q, 1, {id=%q})"):format(kind, idof(1)), start(1))
  end
  local has_batch = type(eng.batch) == "function"
  if not has_batch then
    M.note("eng:batch missing: registering %d rows one commit each", n)
  end
  local i = 2
  while i <= n do
    local last = math.min(n, i + chunk - 1)
    local from = i
    local function fill()
      for j = from, last do
        local rid, rmsg, rcode = start(j)
        if rid == nil then
          error(("eng:start(%q, %d, {id=%q}): nil, %s, %s"):format(kind, j, idof(j),
            tostring(rmsg), tostring(rcode)))
        end
      end
    end
    if has_batch then
      local r, err, bcode = eng:batch(fill)
      if r == nil and err ~= nil then
        error(("eng:batch(start %s rows %d..%d): nil, %s, %s"):format(kind, from, last,
          tostring(err), tostring(bcode)))
      end
    else
      fill()
    end
    i = last + 1
  end
  return n
end

-- Runs `lua5.4 bench/engine/SCRIPT ARGS...` (a worker OS process of a
-- bench) to its end; returns its output, or raises with it when it failed.
function M.run_worker(script, ...)
  local parts = { M.shquote(M.lua_bin()), M.shquote(M.script_dir() .. script) }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = M.shquote(tostring(a)) end
  local p = assert(io.popen(table.concat(parts, " "), "r"))
  local out = p:read("a")
  local ok, how, rc = p:close()
  if not ok then
    error(("%s failed (%s %s): %s"):format(script, tostring(how), tostring(rc), out), 2)
  end
  return out
end

-- Runs eng:run_once() until pred() holds; fails after @p timeout_s
-- seconds without progress (progress() returns a number that grows).
function M.drive_until(eng, pred, what, timeout_s, progress)
  timeout_s = timeout_s or 60
  local last_p, last_t = progress and progress() or 0, M.now_us()
  local turns = 0
  while not pred() do
    local r, msg, code = eng:run_once()
    if r == nil and msg ~= nil then
      error(("eng:run_once() during %s: nil, %s, %s"):format(what, tostring(msg),
        tostring(code)), 2)
    end
    turns = turns + 1
    local t = M.now_us()
    if progress then
      local p = progress()
      if p ~= last_p then last_p, last_t = p, t end
    end
    if t - last_t > timeout_s * 1e6 then
      error(("%s: no progress in %d s (%d loop turns)"):format(what, timeout_s, turns), 2)
    end
  end
  return turns
end

return M

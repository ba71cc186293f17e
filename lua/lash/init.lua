--- lash: durable processes for Lua 5.4.
--
-- The user-facing API (DESIGN.md §5) over the C module `lash.core`. This
-- layer checks option tables, applies defaults, and extends the method
-- tables of engines (`core.Engine`) and process contexts (`core.Ctx`).
--
-- Conventions: misuse (wrong argument types, closed engine) raises an error
-- naming the argument; expected failures return `nil, message, code` with a
-- stable code ("ENOENT", "ECONFLICT", "ETIMEDOUT", "EINVAL", ...).
local core = require "lash.core"
local retry13 = require "lash.retry"

local M = {}

--- The value that stands for nil inside tables of payloads.
M.null = core.null
M.version = core.version
--- Encodes a Lua value as MessagePack: string | nil, msg, "EINVAL".
M.encode = core.encode
--- Decodes MessagePack: value | nil, msg, "EINVAL".
M.decode = core.decode
--- Marks a table as an array (returns it; a new one when nil), so that an
--- empty one stays an array in payloads and JSON. Decoded arrays are marked.
M.array = core.array

--- Raises an error that is not retried (issue 13): the body fails at once
--- whatever its retry policy. Same as error({message = msg, retry = false}).
---@param msg string
function M.fatal(msg, level)
  error({ message = tostring(msg), retry = false }, level or 2)
end

local Engine = core.Engine
local Ctx = core.Ctx

-- engine -> { kind -> its definition: the options it was defined with (a
-- copy), disposition defaulted }
local kind_defs = setmetatable({}, { __mode = "k" })
-- ctx -> { signal name -> seq of the last signal consumed }
local cursors = setmetatable({}, { __mode = "k" })
-- ctx -> { n = the last ordinal taken, j = the journal ([n] = event) or
-- false, in_step = inside ctx:step's fn }
local journals = setmetatable({}, { __mode = "k" })

-- The core's names and limits (lash.h), never typed again here.
M.STATUSES = core.STATUSES         -- {"pending", ..., "abandoned"}
M.TERMINAL = core.TERMINAL         -- {"completed", ..., "abandoned"}
M.DISPOSITIONS = core.DISPOSITIONS -- {"rerunnable", "owner_bound", "external"}
M.ID_MAX = core.ID_MAX             -- ids are 1..ID_MAX bytes
M.NAME_MAX = core.NAME_MAX         -- kinds, owners, event types: 1..NAME_MAX

--- The set {name = true} of a list of names.
function M.set_of(list)
  local set = {}
  for _, n in ipairs(list) do set[n] = true end
  return set
end

local DURABILITIES = M.set_of(core.DURABILITIES)
local TERMINAL = M.set_of(core.TERMINAL)
local LIST_STATUSES = { table.unpack(core.STATUSES) }
LIST_STATUSES[#LIST_STATUSES + 1] = "live"
local MAX_ATTEMPTS = 0xffffffff -- lash_def.max_attempts is 32 bits

-- --------------------------------------------------------- argument checks

-- Raises at the caller of the API function: level 4 from check() (error <
-- argerror < check < API function < caller); deeper helpers pass theirs.
local function argerror(fname, name, msg, level)
  error(string.format("bad argument '%s' to '%s' (%s)", name, fname, msg), level or 4)
end

local function check(fname, name, v, want, optional)
  if v == nil and optional then return v end
  local t = type(v)
  if want == "integer" then
    if math.type(v) ~= "integer" then
      argerror(fname, name, "integer expected, got " ..
        (t == "number" and "float" or t))
    end
  elseif t ~= want then
    argerror(fname, name, want .. " expected, got " .. t)
  end
  return v
end

-- The option names each call takes: any other key raises, naming it and
-- the ones that exist (a misspelt option must not pass in silence).
local OPTIONS = {
  define = { "disposition", "max_attempts", "timeout_ms",
    "retry", -- issue 13 (retry)
    "priority", "concurrency_key", "concurrency_limit", "rate" }, -- (claim)
  load = { "disposition", "max_attempts", "timeout_ms",
    "retry", -- issue 13 (retry)
    "priority", "concurrency_key", "concurrency_limit", "rate" }, -- (claim)
  start = { "id", "disposition", "max_attempts", "timeout_ms",
    "retry", "delay_ms", "run_at", "unique_key", "unique_for_ms", -- issue 13 (retry)
    "priority", "concurrency_key", "concurrency_limit" }, -- (claim)
  rate = { "n", "per_ms" },
  complete = { "authority" },
  list = { "status", "kind", "limit", "after" },
  prune = { "before_ms", "status" },
  run = { "until_idle", "once", "nowait" },
  await = { "timeout_ms" },
  await_event = { "timeout_ms" },
  await_signal = { "timeout_ms" },
  step = { "retry" },
  retry = { "max_attempts", "initial_ms", "factor", "max_ms" },
  signal = { "key" },
  append = { "key" },
  on_log = { "summary_ms" },
  cancel = { "tree" },
  schedule = { "tz", "catch_up" },
  cron_ticks = { "tz", "after", "n" },
}
OPTIONS.register = OPTIONS.start

local function check_known(fname, opts, name, level)
  local names = OPTIONS[fname]
  if not names then return end
  for k in pairs(opts) do
    local found = false
    for _, n in ipairs(names) do
      if k == n then found = true break end
    end
    if not found then
      argerror(fname, name or "opts", 'unknown option "' .. tostring(k) ..
        '" (options: ' .. table.concat(names, ", ") .. ")", level or 4)
    end
  end
end

local function check_opts(fname, opts, name, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    argerror(fname, name or "opts", "table expected, got " .. type(opts))
  end
  check_known(fname, opts, name, level or 5)
  return opts
end

local function einval(msg)
  return nil, msg, "EINVAL"
end

-- "a, b or c"
local function one_of(list)
  if #list == 1 then return list[1] end
  return table.concat(list, ", ", 1, #list - 1) .. " or " .. list[#list]
end

local function quoted(list)
  local out = {}
  for i, n in ipairs(list) do out[i] = '"' .. n .. '"' end
  return out
end

-- true if `v` (when given) is one of `names`, else nil and
-- 'unknown <what> "<v>" (a, b or c)'.
local function known(what, v, names)
  if v == nil then return true end
  for _, n in ipairs(names) do
    if n == v then return true end
  end
  return nil, "unknown " .. what .. ' "' .. v .. '" (' .. one_of(names) .. ")"
end

-- ---------------------------------------------------------------- open

local OPEN_OPTS = {
  durability = "string", owner = "string", incarnation = "string",
  concurrency = "integer", lease_ttl_ms = "integer", renew_ms = "integer",
  stall_ms = "integer",
  max_payload = "integer", max_bytes = "integer", poll_min_ms = "integer",
  poll_max_ms = "integer", max_readers = "integer", read_only = "boolean",
  map_bytes = "integer",
  eager_start = "boolean", loop = "string", fs_wake = "boolean",
  max_cached = "integer", suspend_after_ms = "integer",
}

-- The defaults of the options that are this layer's own.
local OPEN_DEFAULTS = { durability = "full", loop = "own", eager_start = true, fs_wake = true }

--- Opens (creating if missing) the store at `target`: a directory, or a
--- target the core names a scheme for ("lmdb:DIR").
---@param target string
---@param opts? table durability, owner, concurrency, lease_ttl_ms, renew_ms,
---  stall_ms (default 5000: a body that runs that long without yielding is
---  interrupted and fails with ETIMEDOUT; 0 keeps the default),
---  max_payload, max_bytes (a ceiling; default none: the map grows),
---  map_bytes (the map it starts with), max_readers, eager_start (default
---  true: a row of a kind this engine defines is claimed and started in the
---  commit that registers it),
---  loop ("own", the default, or "luv": run on the loop of the luv module,
---  so a luv program's uv.run() also runs lash bodies), fs_wake (default true:
---  watch the store file so writes by other OS processes are seen at once;
---  false leaves only the poll backoff)
---@return userdata|nil engine, string? msg, string? code
function M.open(target, opts)
  check("open", "dir", target, "string")
  opts = check_opts("open", opts)
  local o = {}
  for k, v in pairs(OPEN_DEFAULTS) do o[k] = v end
  for k, v in pairs(opts) do
    local want = OPEN_OPTS[k]
    if not want then argerror("open", tostring(k), "unknown option") end
    check("open", k, v, want)
    if want == "integer" and v < 0 then argerror("open", k, "must be >= 0") end
    if k == "owner" and (#v == 0 or #v > core.NAME_MAX) then
      argerror("open", "owner", "must be 1 to " .. core.NAME_MAX .. " bytes")
    end
    o[k] = v
  end
  if not DURABILITIES[o.durability] then
    argerror("open", "durability",
      "must be " .. one_of(quoted(core.DURABILITIES)) .. ', got "' .. o.durability .. '"')
  end
  if o.concurrency == 0 then argerror("open", "concurrency", "must be >= 1") end
  if o.max_cached == 0 then
    argerror("open", "max_cached", "must be >= 1 (suspend_after_ms = 0 suspends at once)")
  end
  if o.loop ~= "luv" and o.loop ~= "own" then
    argerror("open", "loop", 'must be "luv" or "own", got "' .. o.loop .. '"')
  end
  -- On luv's loop: luv must be loaded so its loop exists to share.
  if o.loop == "luv" then require "luv" end
  return core.open(target, o)
end

local DAMAGE_OPTS = { max_readers = "integer" }

local function damage_opts(fname, opts)
  opts = check_opts(fname, opts)
  for k, v in pairs(opts) do
    local want = DAMAGE_OPTS[k]
    if not want then argerror(fname, tostring(k), "unknown option") end
    check(fname, k, v, want)
  end
  return opts
end

--- Checks the store at `dir` in a child process, so that a damaged page
--- (one that faults when read) is reported, never a crash of this one.
---@param dir string
---@param opts? table max_readers
---@return table|nil problems (lines; empty when clean), string? msg, string? code
function M.check(dir, opts)
  check("check", "dir", dir, "string")
  opts = damage_opts("check", opts)
  return core.check(dir, opts.max_readers)
end

--- Copies every readable row of the store at `dir` (record and events, the
--- lease dropped) into a new store at `dest`.
---@param dir string
---@param dest string
---@param opts? table max_readers
---@return table|nil report {copied, skipped, lines}, string? msg, string? code, table? report
function M.salvage(dir, dest, opts)
  check("salvage", "dir", dir, "string")
  check("salvage", "dest", dest, "string")
  opts = damage_opts("salvage", opts)
  return core.salvage(dir, dest, opts.max_readers)
end

--- Copies the store `from` into the empty store `to`, of any backend (an
--- LMDB directory, postgresql://...): records, events with their replay
--- keys, leases released (running rows are claimable at once on the
--- target), tombstones, the timer and waiter indexes and the counters.
---@param from string
---@param to string
---@return table|nil report {processes, statuses, events, tombstones, leases_released,
---  suspended, change_seq, side}, string? msg, string? code, table? report
function M.migrate(from, to)
  check("migrate", "from", from, "string")
  check("migrate", "to", to, "string")
  if from == to then
    return nil, "cannot copy the store " .. from .. " into itself: give another target", "EINVAL"
  end
  return core.migrate(from, to)
end

-- -------------------------------------------------------------- kinds

local function defs_of(eng)
  local d = kind_defs[eng]
  if not d then
    d = {}
    kind_defs[eng] = d
  end
  return d
end

-- issue 13 (claim): priority, concurrency_key, concurrency_limit and (at
-- define) rate = {n, per_ms}. Types raise; values: true or nil, msg.
local PRIORITY_MAX = 1 << 53
local function check_claim(fname, opts)
  local p = check(fname, "priority", opts.priority, "integer", true)
  local key = check(fname, "concurrency_key", opts.concurrency_key, "string", true)
  local lim = check(fname, "concurrency_limit", opts.concurrency_limit, "integer", true)
  if p ~= nil and (p > PRIORITY_MAX or p < -PRIORITY_MAX) then
    return nil, "priority must be between -2^53 and 2^53, got " .. p
  end
  if key ~= nil and (#key == 0 or #key > core.NAME_MAX) then
    return nil, "concurrency_key must be 1 to " .. core.NAME_MAX .. " bytes, got " .. #key
  end
  if lim ~= nil and lim < 1 then
    return nil, "concurrency_limit must be >= 1, got " .. lim
  end
  if lim ~= nil and lim > 0x7fffffff then
    return nil, "concurrency_limit is out of range, got " .. lim
  end
  if lim ~= nil and key == nil and fname ~= "define" and fname ~= "load" then
    return nil, "concurrency_limit needs a concurrency_key (the limit is per key)"
  end
  local rate = opts.rate
  if rate ~= nil then
    if fname ~= "define" and fname ~= "load" then
      argerror(fname, "rate", "is a kind's option: give it to define")
    end
    check(fname, "rate", rate, "table")
    check_known("rate", rate, "rate", 6)
    local n = check(fname, "rate.n", rate.n, "integer", true)
    local per = check(fname, "rate.per_ms", rate.per_ms, "integer", true)
    if n == nil then return nil, "rate.n is missing (rate = {n = N, per_ms = MS})" end
    if per == nil then return nil, "rate.per_ms is missing (rate = {n = N, per_ms = MS})" end
    if n < 1 then return nil, "rate.n must be >= 1, got " .. n end
    if per < 1 then return nil, "rate.per_ms must be >= 1, got " .. per end
    if n > 1000000 then return nil, "rate.n must be at most 1000000, got " .. n end
    if per > (1 << 40) then return nil, "rate.per_ms is out of range, got " .. per end
  end
  return true
end

-- The claim options of a start: the start's, else the kind's defaults.
local function claim_of(opts, d)
  d = d or {}
  local key = opts.concurrency_key
  if key == nil then key = d.concurrency_key end
  local lim = opts.concurrency_limit
  if lim == nil then lim = d.concurrency_limit end
  local p = opts.priority
  if p == nil then p = d.priority end
  if p == nil and key == nil then return nil end
  return { priority = p, concurrency_key = key, concurrency_limit = key and lim or nil }
end

-- Checks a definition's options (types raise); returns true or nil, msg.
local function check_def(fname, opts)
  check(fname, "disposition", opts.disposition, "string", true)
  check(fname, "max_attempts", opts.max_attempts, "integer", true)
  check(fname, "timeout_ms", opts.timeout_ms, "integer", true)
  local ok, why = known("disposition", opts.disposition, core.DISPOSITIONS)
  if not ok then return nil, why end
  if opts.timeout_ms ~= nil and opts.timeout_ms < 1 then
    return nil, "timeout_ms must be >= 1, got " .. opts.timeout_ms
  end
  if opts.max_attempts ~= nil and opts.max_attempts < 1 then
    return nil, "max_attempts must be >= 1, got " .. opts.max_attempts
  end
  if opts.max_attempts ~= nil and opts.max_attempts > MAX_ATTEMPTS then
    return nil, "max_attempts is out of range"
  end
  return check_claim(fname, opts)
end

-- The options of a definition as stored (issue 11): every option that
-- can be stored (a copy; functions and the like are left out), so options
-- added to OPTIONS.define are recorded without a change here.
local function stored_options(opts)
  local out = {}
  for k, v in pairs(opts) do
    if type(k) == "string" and core.encode(v) then out[k] = v end
  end
  return out
end

--- Defines a kind: this engine runs rows of `kind` with body `fn(ctx, input)`.
---@param kind string
---@param fn function
---@param opts? table disposition ("rerunnable"), max_attempts, timeout_ms
---  (the body's time budget per attempt, from its start; default none)
function Engine:define(kind, fn, opts)
  check("define", "kind", kind, "string")
  check("define", "fn", fn, "function")
  opts = check_opts("define", opts)
  local valid, why = check_def("define", opts)
  if not valid then return einval(why) end
  local policy, pwhy = retry13.policy("define", opts.retry) -- issue 13
  if pwhy then return einval(pwhy) end
  local rate = opts.rate or {} -- (claim)
  local ok, msg, code = core.define(self, kind, fn, opts.timeout_ms or 0, policy,
    rate.n or 0, rate.per_ms or 0)
  if not ok then return nil, msg, code end
  local def = stored_options(opts)
  -- The definition in the store (issue 11): a start from another program
  -- takes it. An identical define writes nothing; a read-only store keeps
  -- none.
  local _, smsg, scode = core.kind_put(self, kind, def)
  if scode and scode ~= "EACCES" then return nil, smsg, scode end
  local d = {}
  for k, v in pairs(def) do d[k] = v end
  d.disposition = d.disposition or "rerunnable"
  d.retry = policy -- issue 13: the checked policy, defaults filled in
  defs_of(self)[kind] = d
  return true
end

-- Reads the kinds a script file returns: { kind = { fn, opts } } or nil, msg.
local function read_kinds(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then return nil, err end
  local ok, t = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(t) end
  if type(t) ~= "table" then
    return nil, path .. ": must return a table of kinds, returned a " .. type(t)
  end
  local out = {}
  for kind, v in pairs(t) do
    if type(kind) ~= "string" then
      return nil, path .. ": kind names must be strings, got a " .. type(kind)
    end
    local fn, opts = v, nil
    if type(v) == "table" then fn, opts = v[1], v[2] end
    if type(fn) ~= "function" then
      return nil, path .. ": kind " .. kind .. " must be a function or {fn, opts}"
    end
    if opts ~= nil and type(opts) ~= "table" then
      return nil, path .. ": the options of kind " .. kind .. " must be a table"
    end
    opts = opts or {}
    local dok, valid, why = pcall(function()
      check_known("load", opts)
      return check_def("load", opts)
    end)
    if not dok or not valid then
      return nil, path .. ": kind " .. kind .. ": " .. tostring(dok and why or valid)
    end
    out[kind] = { fn, opts }
  end
  return out
end

-- The *.lua files of directory `dir`, in name order: paths | nil, msg, code.
local function lua_files(dir)
  local names, msg, code = core.dir_files(dir)
  if not names then return nil, msg, code end
  local files = {}
  for _, n in ipairs(names) do
    if n:match("%.lua$") then files[#files + 1] = dir .. "/" .. n end
  end
  table.sort(files)
  return files
end

--- Loads kinds from a file returning { kind = fn | {fn, opts} }, or from
--- every *.lua file of a directory. A malformed file defines nothing.
---@param path string
---@return true|nil ok, string? msg, string? code
function Engine:load(path)
  check("load", "path", path, "string")
  local f, err = io.open(path, "r")
  if not f then return nil, "cannot load " .. err, "ENOENT" end
  local _, rerr = f:read(0)
  f:close()
  local files = { path }
  if rerr then -- a directory (reading it fails), or unreadable
    local msg, code
    files, msg, code = lua_files(path)
    if not files then return nil, msg, code end
  end
  local all = {}
  for _, file in ipairs(files) do
    local kinds, kerr = read_kinds(file)
    if not kinds then return einval(kerr) end
    for kind, v in pairs(kinds) do all[kind] = v end
  end
  for kind, v in pairs(all) do
    local ok, msg, code = self:define(kind, v[1], v[2])
    if not ok then return nil, msg, code end
  end
  return true
end

-- ------------------------------------------------------------- writes

local id_ms, id_n = -1, 0

-- A time-ordered id: ms since the epoch, a per-ms counter, random bits.
local function new_id(eng)
  local ms = eng:now()
  if ms == id_ms then
    id_n = id_n + 1
  else
    id_ms, id_n = ms, 0
  end
  -- the random part from the kernel: two processes starting rows in the
  -- same millisecond must not make the same id
  return string.format("%013x-%04x-%08x", ms, id_n % 0x10000,
    string.unpack(">I4", core.random_bytes(4)))
end

-- engine -> { kind -> { def = the stored definition or false, at = ms } }:
-- what the store said, reused for STORED_TTL_MS (a producer starting many
-- rows reads each kind's definition once a second, not per start).
local stored_cache = setmetatable({}, { __mode = "k" })
local STORED_TTL_MS = 1000

local function stored_def(eng, kind)
  local c = stored_cache[eng]
  if not c then
    c = {}
    stored_cache[eng] = c
  end
  local now, e = eng:now(), c[kind]
  if e and now - e.at < STORED_TTL_MS and now >= e.at then return e.def or nil end
  local d = core.kind_get(eng, kind)
  c[kind] = { def = d or false, at = now }
  return d
end

-- The options of a start that must agree with a stored definition (the
-- others may be given per start).
local STORED_FIXED = { "disposition", "max_attempts" }

-- The definition of `kind` for a start: this engine's, else the one in the
-- store (issue 11), else nil; or nil, msg, code when a start's explicit
-- option conflicts with the stored one.
local function definition_of(eng, kind, opts)
  local d = defs_of(eng)[kind]
  if d then return d end
  if type(kind) ~= "string" or #kind == 0 or #kind > core.NAME_MAX then return nil end
  local stored = stored_def(eng, kind)
  if not stored then return nil end
  d = stored.options or {}
  for _, k in ipairs(STORED_FIXED) do
    local mine, theirs = opts[k], d[k]
    if k == "disposition" then theirs = theirs or "rerunnable" end
    if mine ~= nil and theirs ~= nil and mine ~= theirs then
      return nil, string.format("kind %s is defined in the store with %s = %s " ..
        "(version %d); this start asks for %s = %s: drop the option, or " ..
        "define the kind anew", kind, k, tostring(theirs), stored.version, k,
        tostring(mine)), "ECONFLICT"
    end
  end
  return d
end

-- The checked definition of a start: id (nil when not given), disposition,
-- max_attempts, timeout_ms; or nil, msg, code.
local function start_def(eng, fname, kind, opts, depth)
  check(fname, "kind", kind, "string")
  opts = check_opts(fname, opts, nil, 6 + (depth or 0))
  local id = check(fname, "id", opts.id, "string", true)
  local valid, why = check_def(fname, opts)
  if not valid then return nil, why end
  if id ~= nil and (#id == 0 or #id > core.ID_MAX) then
    return nil, "invalid id: must be 1 to " .. core.ID_MAX .. " bytes, got " .. #id
  end
  local d, dwhy, dcode = definition_of(eng, kind, opts)
  if dwhy then return nil, dwhy, dcode end
  local disp = opts.disposition or (d and d.disposition) or "rerunnable"
  local max = opts.max_attempts
  if max == nil and d then max = d.max_attempts end
  local budget = opts.timeout_ms
  -- a kind this engine defines has its budget in the core already
  if budget == nil and d and not defs_of(eng)[kind] then budget = d.timeout_ms end
  if d and d.retry ~= nil and not defs_of(eng)[kind] then
    -- another program's stored retry option, checked as a define would
    local p = retry13.policy(fname, d.retry, 7)
    local dd = {}
    for k, v in pairs(d) do dd[k] = v end
    dd.retry = p
    d = dd
  end
  -- issue 13 (retry): retry policy, delay, unique key (start wins)
  local extra, xwhy = retry13.start_fields(fname, opts, d, 7)
  if extra == nil then return nil, xwhy end
  -- issue 13 (claim): priority, concurrency key and limit, in the same table
  local claim = claim_of(opts, d)
  if claim then
    extra = extra or {}
    for k, v in pairs(claim) do extra[k] = v end
  end
  return { id = id, disposition = disp, max_attempts = max or 0,
    timeout_ms = budget or 0, extra = extra or nil }
end

--- Registers a process of `kind` (need not be defined here); idempotent per
--- id + definition. Returns the id and whether this call created the row
--- (false: the same row was there, or its unique key's holder is returned).
---@param kind string
---@param input any payload
---@param opts? table id, disposition, max_attempts, timeout_ms (this
---  start's body time budget, stored on the row: a re-run keeps it)
---@return string|nil id, boolean|string created (or msg), string? code
local function register(self, fname, kind, input, opts, depth)
  local def, why, dcode = start_def(self, fname, kind, opts, depth)
  if not def then return nil, why, dcode or "EINVAL" end
  local id = def.id or new_id(self)
  local ok, held, created = core.start(self, kind, input, id, def.disposition,
    def.max_attempts, def.timeout_ms, def.extra)
  if not ok then return nil, held, created end -- (nil, message, code)
  if held then return held, false end -- issue 13: its unique key's holder
  return id, created
end

--- See register above: returns id, created.
---@return string|nil id, boolean|string created (or msg), string? code
function Engine:register(kind, input, opts)
  return register(self, "register", kind, input, opts) -- (a tail call: errors name the caller)
end

--- eng:register returning the id alone (so `eng:await(eng:start(...))`
--- reads as it should).
---@return string|nil id, string? msg, string? code
function Engine:start(kind, input, opts)
  local id, created, code = register(self, "start", kind, input, opts, 1)
  if not id then return nil, created, code end
  return id
end

-- The host appends of lash.core, given their replay key (opts.key).
local core_signal, core_append = Engine.signal, Engine.append

-- opts.key of eng:signal / eng:append, checked.
local function key_of(fname, opts)
  opts = check_opts(fname, opts, "opts", 6)
  return check(fname, "opts.key", opts.key, "string", true)
end

--- Appends the signal "signal.<name>" to row `id`. With opts.key (a replay
--- key, SEMANTICS 1.4) a repeat of the same signal under the same key writes
--- nothing and returns the first one's seq; the same key with another
--- payload is an ECONFLICT failure.
---@param opts? table key
---@return integer|nil seq, boolean|string replayed (or msg), string? code
function Engine:signal(id, name, payload, opts)
  return core_signal(self, id, name, payload, key_of("signal", opts))
end

--- Appends an event of a user type to row `id` (unfenced); opts.key as for
--- eng:signal.
---@param opts? table key
---@return integer|nil seq, boolean|string replayed (or msg), string? code
function Engine:append(id, type_, payload, opts)
  return core_append(self, id, type_, payload, key_of("append", opts))
end

--- Ends a row without its lease, as an authority (external rows:
--- "external"; rerunnable and owner_bound rows: "workflow").
---@param id string
---@param outcome table {status="completed", value=} | {status="failed",
---  error=} | {status="cancelled", reason=} | {status="abandoned"}
---@param opts? table authority ("external")
function Engine:complete(id, outcome, opts)
  check("complete", "id", id, "string")
  check("complete", "outcome", outcome, "table")
  opts = check_opts("complete", opts)
  local auth = check("complete", "authority", opts.authority, "string", true) or "external"
  local ok, why = known("authority", auth, core.AUTHORITIES)
  if not ok then return einval(why) end
  if not TERMINAL[outcome.status] then
    argerror("complete", "outcome",
      "outcome.status must be " .. one_of(quoted(core.TERMINAL)))
  end
  -- The stored payload (a failure's {class=, message=}) is built by the core
  -- module, the one place every outcome is made.
  return core.complete(self, id, outcome, auth)
end

--- Removes terminal rows last updated before `before_ms` (and of `status`).
---@param opts table before_ms, status
---@return table {processes=, events=}
function Engine:prune(opts)
  check("prune", "opts", opts, "table")
  check_known("prune", opts, nil, 4)
  check("prune", "before_ms", opts.before_ms, "integer")
  local st = check("prune", "status", opts.status, "string", true)
  local ok, why = known("status", st, core.STATUSES)
  if not ok then return einval(why) end
  return core.prune(self, opts.before_ms, st)
end

--- Runs fn(eng) with every write in one transaction: committed if fn
--- returns, discarded (and fn's error re-raised) if it raises.
function Engine:batch(fn)
  check("batch", "fn", fn, "function")
  core.batch_begin(self)
  -- pcall does not catch a bare coroutine.yield: if fn's coroutine is
  -- closed while fn runs (the engine ends such a body), abort the batch
  -- rather than leave it open. After a normal end there is none to abort.
  -- luacheck: push ignore 211 (a to-be-closed variable is used by its scope)
  local _guard <close> = setmetatable({}, { __close = function()
    pcall(core.batch_end, self, false)
  end })
  -- luacheck: pop
  local res = table.pack(pcall(fn, self))
  local ok, msg, code = core.batch_end(self, res[1])
  if not res[1] then error(res[2], 0) end
  if not ok then return nil, msg, code end
  return table.unpack(res, 2, res.n)
end

-- ---------------------------------------------------------- schedules

local CATCH_UP = { "skip", "one", "all" }

--- Adds (or replaces) the durable schedule `name`: a cron `spec` (five
--- fields, or six with a leading seconds field; @hourly-style aliases;
--- "@every 30s") that starts one process of `kind` with `input` per tick,
--- exactly once across every worker of the store (id `name@<tick, ISO 8601
--- UTC>`). The children take the disposition and max_attempts `kind` is
--- defined with here (else the defaults).
---@param opts? table tz (a tz database name; default "UTC"), catch_up
---  ("skip" (default): ticks missed while no worker ran are not started;
---  "one": the latest of them; "all": each)
---@return true|nil ok, string how_or_msg ("created", "same" or "replaced"), string? code
function Engine:schedule(name, spec, kind, input, opts)
  check("schedule", "name", name, "string")
  check("schedule", "spec", spec, "string")
  check("schedule", "kind", kind, "string")
  opts = check_opts("schedule", opts)
  check("schedule", "tz", opts.tz, "string", true)
  check("schedule", "catch_up", opts.catch_up, "string", true)
  local ok, why = known("catch_up", opts.catch_up, CATCH_UP)
  if not ok then return einval(why) end
  local d = defs_of(self)[kind]
  local how, msg, code = core.schedule(self, name, spec, kind, input, opts.tz,
    opts.catch_up, d and d.disposition, d and d.max_attempts)
  if not how then return nil, msg, code end
  return true, how
end

--- The next ticks of a cron spec (checked as eng:schedule checks it).
---@param opts? table tz, after (epoch ms; default now), n (default 3)
---@return table|nil ticks (epoch ms), string? msg, string? code
function M.cron_ticks(spec, opts)
  check("cron_ticks", "spec", spec, "string")
  opts = check_opts("cron_ticks", opts)
  check("cron_ticks", "tz", opts.tz, "string", true)
  check("cron_ticks", "after", opts.after, "integer", true)
  check("cron_ticks", "n", opts.n, "integer", true)
  if opts.n and opts.n < 0 then argerror("cron_ticks", "n", "must be >= 0") end
  return core.cron_ticks(spec, opts.tz, opts.after, opts.n or 3)
end

--- Removes the schedule `name` (the processes it started stay).
---@return true|nil ok, string? msg, string? code
function Engine:unschedule(name)
  check("unschedule", "name", name, "string")
  return core.unschedule(self, name)
end

--- The schedules, in name order: {name, spec, kind, input, tz, catch_up,
--- next_at, last_at, started, created_at, updated_at, ticks = {the next
--- three, epoch ms}}.
---@return table|nil schedules, string? msg, string? code
function Engine:schedules()
  return core.schedules(self)
end

-- -------------------------------------------------------------- reads

--- Lists records: filter {status=, kind=, limit=, after=} (status may be
--- "live"), in id order.
function Engine:list(filter)
  filter = check_opts("list", filter, "filter")
  local st = check("list", "status", filter.status, "string", true)
  check("list", "kind", filter.kind, "string", true)
  check("list", "limit", filter.limit, "integer", true)
  check("list", "after", filter.after, "string", true)
  local ok, why = known("status", st, LIST_STATUSES)
  if not ok then return einval(why) end
  if filter.limit and filter.limit < 0 then return einval("limit must be >= 0") end
  return core.list(self, st, filter.kind, filter.limit or 0, filter.after)
end

-- ------------------------------------------- kinds and workers (issue 11)

--- The live workers of the store: a list of {owner, incarnation, pid,
--- host, kinds, started_at, heartbeat_at, alive}. alive is false once the
--- store knows the worker's process is gone (its entry stays until an
--- engine removes it in a commit it makes anyway).
---@return table|nil workers, string? msg, string? code
function Engine:workers()
  return core.workers(self)
end

-- kind -> the live workers defining it ({owner, incarnation, pid, host}).
local function live_definers(workers)
  local by = {}
  for _, w in ipairs(workers) do
    if w.alive then
      for _, k in ipairs(w.kinds) do
        by[k] = by[k] or M.array()
        table.insert(by[k], { owner = w.owner, incarnation = w.incarnation,
          pid = w.pid, host = w.host })
      end
    end
  end
  return by
end

--- The kinds of the store: each stored definition, and each kind that has
--- pending rows, as {kind, version, options, updated_at (ms, when this
--- version was stored), workers = the live workers defining it, waiting =
--- its pending rows when no live worker defines it (else 0)}, in name
--- order. version, options and updated_at are nil for a kind nobody
--- defined.
---@return table|nil kinds, string? msg, string? code
function Engine:kinds()
  local defs, msg, code = core.kinds(self)
  if not defs then return nil, msg, code end
  local workers
  workers, msg, code = core.workers(self)
  if not workers then return nil, msg, code end
  local pending
  pending, msg, code = core.list(self, "pending", nil, 0, nil)
  if not pending then return nil, msg, code end
  local by, rows, out, seen = live_definers(workers), {}, {}, {}
  for _, r in ipairs(pending) do rows[r.kind] = (rows[r.kind] or 0) + 1 end
  local function add(kind, d)
    seen[kind] = true
    local ws = by[kind] or M.array()
    out[#out + 1] = { kind = kind, version = d and d.version, options = d and d.options,
      updated_at = d and d.updated_at, workers = ws,
      waiting = #ws == 0 and (rows[kind] or 0) or 0 }
  end
  for _, d in ipairs(defs) do add(d.kind, d) end
  for kind in pairs(rows) do
    if not seen[kind] then add(kind, nil) end
  end
  table.sort(out, function(a, b) return a.kind < b.kind end)
  return out
end

-- -------------------------------------------------------------- waits

local function timeout_of(fname, opts)
  opts = check_opts(fname, opts, nil, 6)
  local t = check(fname, "timeout_ms", opts.timeout_ms, "integer", true)
  if t and t < 0 then argerror(fname, "timeout_ms", "must be >= 0") end
  return t
end

--- Waits for the outcome of `id`. Yields inside an engine coroutine, runs
--- the loop from plain code.
---@return table|nil outcome, string? msg, string? code
function Engine:await(id, opts)
  check("await", "id", id, "string")
  return core.await(self, id, timeout_of("await", opts))
end

--- Waits for the first event of `id` of exactly `type` after seq `after`.
---@return table|nil event, string? msg, string? code
function Engine:await_event(id, type_, after, opts)
  check("await_event", "id", id, "string")
  check("await_event", "type", type_, "string")
  check("await_event", "after", after, "integer", true)
  return core.await_event(self, id, type_, after or 0, timeout_of("await_event", opts))
end

-- ------------------------------------------------------------ driving

--- Runs the loop: eng:run() until eng:stop(); eng:run{until_idle=true}
--- until nothing is left to do; eng:run{once=true} one turn.
function Engine:run(opts)
  opts = check_opts("run", opts)
  local mode = "default"
  if opts.until_idle then
    mode = "until_idle"
  elseif opts.once then
    mode = "once"
  elseif opts.nowait then
    mode = "nowait"
  end
  return core.run(self, mode)
end

--- One loop turn (blocks for events if none is ready).
function Engine:run_once()
  return core.run(self, "once")
end

-- ---------------------------------------------------------------- ctx

-- The journal. Every command below takes the next ordinal n of the run (1,
-- 2, ... in call order) and, where it writes, journals its result with the
-- replay key "cmd:<n>" in the commit of its effect. A re-run (after a crash
-- or a suspension) runs the body from the top: a command whose ordinal is
-- in the journal returns the journaled result without writing or waiting;
-- one whose op or name differs fails the process (ENONDETERMINISM).

-- What the journal entry `ev` says was asked: op, name.
local function journaled_as(ev)
  local t, p = ev.type, ev.payload
  if t == "process.step" then return "step", p and p.name end
  if t == "process.child" then return "start", p and p.id end
  if t == "process.value" then return p and p.op or "value", nil end
  if t == "process.sleep" then return "sleep", nil end
  if t == "process.wait" then return "wait", p and p.wait end
  return "emit", t
end

local function describe(op, name)
  if name == nil then return op end
  return op .. ' "' .. tostring(name) .. '"'
end

-- The journal state of `ctx` (the journal read back on its first use).
local function journal_of(ctx)
  local st = journals[ctx]
  if not st then
    st = { n = 0, j = core.ctx_journal(ctx) or false }
    journals[ctx] = st
  end
  return st
end

-- Takes the next ordinal of `ctx` for a command (op, name): returns n and
-- the journal entry of n (nil on a first run, or past the journal's end).
local function command(ctx, op, name)
  local st = journal_of(ctx)
  if st.in_step then
    error("ctx:" .. op .. " cannot run inside the fn of ctx:step (a step is " ..
      "one journaled value: run commands between steps)", 3)
  end
  local n = st.n + 1
  st.n = n
  local ev = st.j and st.j[n]
  if ev then
    local jop, jname = journaled_as(ev)
    if jop ~= op or jname ~= name then
      core.ctx_nondeterminism(ctx, string.format(
        "process %s: command %d is %s in the journal but the body asked for " ..
        "%s (the body changed, or does something its journal cannot " ..
        "replay: use ctx:step, ctx:now, ctx:random for what differs between runs)",
        ctx.id, n, describe(jop, jname), describe(op, name)))
    end
  end
  return n, ev
end

-- A journal write failed (the lease is gone, the store failed): the body
-- cannot go on as if its progress were durable.
local function journal_failed(ctx, what, msg, code)
  error({ class = "journal", code = code,
    message = "process " .. ctx.id .. ": cannot journal " .. what .. ": " ..
      tostring(msg) }, 0)
end

-- The end of every ctx wait. A ctx wait begins with one read: an answer
-- already there (or a failure) is returned at once, and `false` says the
-- wait is pending. Only then is the row shown waiting: process.waiting
-- {wait = what} (with command n's journal entry `jtype` `entry` when
-- given), park, process.resumed (with process.timeout when it timed out
-- and `timed` names the command). A cancellation raised by the park
-- propagates (the row ends cancelled, which clears the wait). Unless
-- `in_memory`, the body may be suspended while parked: a re-run replays
-- it up to here.
local function parked(ctx, what, r1, r2, r3, n, jtype, entry, timed, in_memory)
  if r1 ~= false then
    if timed and r3 == "ETIMEDOUT" then
      core.ctx_record(ctx, timed, "process.timeout", {}, true, ".timeout")
    end
    return r1, r2, r3
  end
  local ok, msg, code = core.ctx_wait_set(ctx, what, n, jtype, entry)
  if not ok then
    core.ctx_forget(ctx)
    return nil, msg, code
  end
  r1, r2, r3 = core.ctx_park(ctx, not in_memory and what or nil)
  core.ctx_wait_clear(ctx, (timed and r3 == "ETIMEDOUT") and timed or nil)
  return r1, r2, r3
end

-- A wait of command n with an optional timeout. `begin(timeout)` starts
-- it (one core.ctx_await*). The first run of a wait with a timeout
-- journals its deadline when it parks, and its timeout; a re-run keeps the
-- deadline, and a wait that timed out times out again at once.
local function journaled_wait(ctx, what, timeout, begin)
  local n, ev = command(ctx, "wait", what)
  if ev and ev.timed_out then
    return nil, "timed out waiting for " .. what .. " (replayed)", "ETIMEDOUT"
  end
  local entry, deadline
  if ev then
    deadline = ev.payload and ev.payload.deadline
  elseif timeout then
    deadline = ctx.engine:now() + timeout
    entry = { wait = what, deadline = deadline }
  end
  if deadline then timeout = math.max(0, deadline - ctx.engine:now()) end
  local timed = deadline and n or nil
  local r1, r2, r3 = begin(timeout)
  if entry and r1 == false then
    return parked(ctx, what, r1, r2, r3, n, "process.wait", entry, timed)
  end
  if entry and r3 == "ETIMEDOUT" then
    -- timed out at once: its entry, then its timeout
    core.ctx_record(ctx, n, "process.wait", entry, true)
  end
  return parked(ctx, what, r1, r2, r3, nil, nil, nil, timed)
end

--- Waits for the next "signal.<name>" event this run has not consumed yet
--- (signals sent before the call count). Returns its payload.
---@param name string
---@param opts? table timeout_ms
function Ctx:await_signal(name, opts)
  check("await_signal", "name", name, "string")
  local timeout = timeout_of("await_signal", opts)
  local type_ = "signal." .. name
  local seen = cursors[self]
  if not seen then
    seen = {}
    cursors[self] = seen
  end
  local ev, msg, code = journaled_wait(self, "signal:" .. name, timeout,
    function(t) return core.ctx_await_event(self, type_, seen[name] or 0, t) end)
  if not ev then return nil, msg, code end
  seen[name] = ev.seq
  return ev.payload
end

--- Waits for the first event of exactly `type` after seq `after`, of this
--- process — ctx:await_event(type, after, opts) — or of process `id` —
--- ctx:await_event(id, type, after, opts); returns the event.
function Ctx:await_event(a, b, c, d)
  local id, type_, after, opts
  if type(b) == "string" then
    id, type_, after, opts = a, b, c, d
    check("await_event", "id", id, "string")
  else
    type_, after, opts = a, b, c
  end
  check("await_event", "type", type_, "string")
  check("await_event", "after", after, "integer", true)
  local timeout = timeout_of("await_event", opts)
  local what = "event:" .. (id and (id .. ":") or "") .. type_
  return journaled_wait(self, what, timeout,
    function(t) return core.ctx_await_event(self, type_, after or 0, t, id) end)
end

--- Sleeps `ms` milliseconds (status "waiting" meanwhile). Journaled: a
--- re-run sleeps only what is left of the first run's sleep.
function Ctx:sleep(ms)
  check("sleep", "ms", ms, "integer")
  if ms < 0 then argerror("sleep", "ms", "must be >= 0") end
  local n, ev = command(self, "sleep")
  local wake_at
  if ev then
    wake_at = ev.payload.wake_at
    local left = wake_at - self.engine:now()
    if left <= 0 then return true end
    return parked(self, "sleep:" .. ms, core.ctx_sleep(self, left))
  end
  wake_at = self.engine:now() + ms
  local r1, r2, r3 = core.ctx_sleep(self, ms)
  return parked(self, "sleep:" .. ms, r1, r2, r3, n, "process.sleep", { wake_at = wake_at })
end

--- Emits an event of `type` on this process; returns its seq. Journaled:
--- a re-run returns the seq of the first run's event.
function Ctx:emit(type_, payload)
  check("emit", "type", type_, "string")
  local n, ev = command(self, "emit", type_)
  if ev then return ev.seq end
  return core.ctx_emit(self, type_, payload, n)
end

-- The error value a step journals: data as it is (a string, a table of
-- data), anything else as its message.
local function step_error(err)
  local t = type(err)
  if t == "string" or t == "number" or t == "boolean" then return err end
  if t == "table" then
    local ok = core.encode(err)
    if ok then return err end
  end
  return tostring(err)
end

local RETRY_DEFAULTS = { max_attempts = 3, initial_ms = 100, factor = 2, max_ms = 10000 }

local function retry_of(opts)
  local r = opts.retry
  if r == nil then return nil end
  check("step", "retry", r, "table")
  check_known("retry", r, "retry", 5)
  local out = {}
  for k, dflt in pairs(RETRY_DEFAULTS) do
    local v = r[k]
    if v ~= nil then
      if type(v) ~= "number" or v < (k == "factor" and 1 or 0) then
        argerror("step", "retry." .. k, "must be a number >= " .. (k == "factor" and 1 or 0))
      end
    end
    out[k] = v or dflt
  end
  if math.type(out.max_attempts) ~= "integer" or out.max_attempts < 1 then
    argerror("step", "retry.max_attempts", "must be an integer >= 1")
  end
  return out
end

--- Runs `fn()` once and journals its first result (or its error): a
--- re-run returns the value (or raises the same error) without calling fn.
--- opts.retry = {max_attempts = 3, initial_ms = 100, factor = 2, max_ms =
--- 10000} retries a raising fn with backoff before the error is journaled.
---@param name string
---@param fn function
---@param opts? table retry
function Ctx:step(name, fn, opts)
  check("step", "name", name, "string")
  check("step", "fn", fn, "function")
  local retry = opts ~= nil and retry_of(check_opts("step", opts)) or nil
  local n, ev = command(self, "step", name)
  if ev then
    local p = ev.payload or {}
    if p.error ~= nil then error(p.error, 0) end
    return p.value
  end
  local st = journal_of(self)
  local ok, v, delay = false, nil, retry and retry.initial_ms or 0
  for attempt = 1, retry and retry.max_attempts or 1 do
    st.in_step = true
    ok, v = pcall(fn)
    st.in_step = false
    if ok then break end
    if getmetatable(v) == core.Cancelled then error(v, 0) end
    if retry and attempt < retry.max_attempts then
      self.engine:sleep(math.floor(delay))
      delay = math.min(delay * retry.factor, retry.max_ms)
    end
  end
  local entry = ok and { name = name, value = v } or { name = name, error = step_error(v) }
  -- Not waited for: the entry joins this turn's group commit with whatever
  -- the body does next (its next step, its outcome), so steps in a row
  -- share one commit. A crash before that commit re-runs the steps since
  -- the last one (each crashed between its effect and its commit).
  local seq, msg, code = core.ctx_record(self, n, "process.step", entry, true)
  if not seq then
    if ok and code == "EINVAL" then
      error("ctx:step " .. name .. ": its value cannot be journaled: " .. tostring(msg), 2)
    end
    journal_failed(self, "step " .. name, msg, code)
  end
  if not ok then error(v, 0) end
  return v
end

-- A value command: journaled process.value {op, value}; the commit is not
-- waited for (a later durable write of the run commits after it).
local function value_command(ctx, op, make)
  local n, ev = command(ctx, op)
  if ev then return ev.payload.value end
  local v = make()
  local ok, msg, code = core.ctx_record(ctx, n, "process.value", { op = op, value = v }, true)
  if not ok then journal_failed(ctx, op, msg, code) end
  return v
end

--- The time (ms since the epoch), journaled: a re-run gets the same.
function Ctx:now()
  return value_command(self, "now", function() return self.engine:now() end)
end

--- math.random(m, n) journaled: a re-run gets the same.
function Ctx:random(m, n)
  if m ~= nil then check("random", "m", m, "integer") end
  if n ~= nil then check("random", "n", n, "integer") end
  return value_command(self, "random", function()
    if m == nil then return math.random() end
    if n == nil then return math.random(m) end
    return math.random(m, n)
  end)
end

--- A random (version 4) UUID, journaled: a re-run gets the same.
function Ctx:uuid()
  return value_command(self, "uuid", function()
    local b = { string.byte(core.random_bytes(16), 1, 16) }
    b[7] = (b[7] & 0x0f) | 0x40
    b[9] = (b[9] & 0x3f) | 0x80
    return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-" ..
      "%02x%02x%02x%02x%02x%02x", table.unpack(b))
  end)
end

local EXEC_OPTS = { timeout_ms = "integer", max_output = "integer", env = "table",
  cwd = "string" }

--- Runs the command argv = {program, args...} without blocking the loop
--- (the row shows waiting on "exec:<program>" meanwhile). Returns
--- {status = exit code | signal = n, stdout =, stderr = [, truncated = true]};
--- nil, msg, "ETIMEDOUT" after timeout_ms (the command is killed); nil, msg,
--- code when it cannot start. Not journaled: a re-run runs it again (wrap
--- it in ctx:step to run it once).
---@param argv string[]
---@param opts? table timeout_ms, max_output (bytes per stream, default 1 MiB), env, cwd
function Ctx:exec(argv, opts)
  check("exec", "argv", argv, "table")
  if #argv == 0 then argerror("exec", "argv", "give at least the program: {\"prog\", args...}") end
  opts = check_opts("exec", opts)
  for k, v in pairs(opts) do
    local want = EXEC_OPTS[k]
    if not want then
      argerror("exec", tostring(k), "unknown option (timeout_ms, max_output, env or cwd)")
    end
    check("exec", k, v, want)
  end
  if opts.timeout_ms and opts.timeout_ms < 0 then
    argerror("exec", "timeout_ms", "must be >= 0")
  end
  if opts.max_output and opts.max_output < 0 then
    argerror("exec", "max_output", "must be >= 0")
  end
  local prog = tostring(argv[1])
  local r1, r2, r3 = core.ctx_exec(self, argv, opts.timeout_ms, opts.max_output,
    opts.env, opts.cwd)
  return parked(self, "exec:" .. prog:sub(1, 100), r1, r2, r3, nil, nil, nil, nil, true)
end

--- Starts a child process; returns its id: opts.id, or "<this id>/<n>"
--- (n: the command's ordinal), so that a re-run finds the same child. The
--- child's parent is this process. Journaled with the child's registration.
function Ctx:start(kind, input, opts)
  local def, why, dcode = start_def(self.engine, "start", kind, opts)
  if not def then return nil, why, dcode or "EINVAL" end
  if def.extra and def.extra.unique_key then -- issue 13 (retry)
    return einval("unique_key is for eng:start (a child's id already names it once)")
  end
  -- the child's default id names the ordinal this command is about to take
  local id = def.id or (self.id .. "/" .. (journal_of(self).n + 1))
  local n, ev = command(self, "start", id)
  if ev then return id end
  local ok, msg, code = core.ctx_child(self, n, kind, input, id, def.disposition,
    def.max_attempts, def.timeout_ms, def.extra)
  if not ok then return nil, msg, code end
  return id
end

--- Waits for the outcome of another process (a child); a child already
--- terminal (or pruned) returns at once.
function Ctx:await(id, opts)
  check("await", "id", id, "string")
  local timeout = timeout_of("await", opts)
  return journaled_wait(self, "process:" .. id, timeout,
    function(t) return core.ctx_await(self, id, t) end)
end

-- ---- issue 14: metrics (web) ----

--- The store and this engine in Prometheus text exposition: text | nil,
--- msg, code (lua/lash/metrics.lua).
function Engine:metrics()
  return require("lash.metrics").text(self)
end

-- ------------------------------------------------- looking (issue 14)

--- Calls fn(observation) for each notable moment of this engine: a body's
--- end ({type = "finished", id, kind, attempt, status, outcome, retry_at when
--- the failure waits for a retry}), a lost
--- lease ("lease_lost"), a row taken over from a gone owner ("taken_over",
--- owner), a suspension ("suspended") and, every opts.summary_ms, the
--- suspensions of that period ({type = "summary", suspended, period_ms}).
--- fn nil stops it. lash.log formats them (the worker's log lines).
function Engine:on_log(fn, opts)
  if fn ~= nil then check("on_log", "fn", fn, "function") end
  opts = check_opts("on_log", opts)
  local every = check("on_log", "summary_ms", opts.summary_ms, "integer", true)
  if every and every < 0 then argerror("on_log", "summary_ms", "must be >= 0") end
  core.set_observer(self, fn, every or 0)
end

--- The processes started by `id` (their records), in id order.
function Engine:children(id)
  check("children", "id", id, "string")
  return core.children(self, id) -- the children index: no walk over the rows
end

--- The process `id` and its descendants: {record = r, children = {tree...}}.
function Engine:tree(id)
  check("tree", "id", id, "string")
  local r, msg, code = self:get(id)
  if not r then return nil, msg, code end
  local seen = { [id] = true }
  local function grow(rec)
    local node = { record = rec, children = {} }
    local kids, kmsg, kcode = self:children(rec.id)
    if not kids then error({ kmsg, kcode }) end
    for _, k in ipairs(kids) do
      if not seen[k.id] then
        seen[k.id] = true
        node.children[#node.children + 1] = grow(k)
      end
    end
    return node
  end
  local ok, res = pcall(grow, r)
  if not ok then
    if type(res) == "table" then return nil, res[1], res[2] end
    error(res, 0)
  end
  return res
end

local raw_cancel = Engine.cancel

--- Requests the cancellation of `id` (reason optional): its seq. With
--- opts.tree, also of every live descendant (children first, then it): a
--- list {{id =, seq = | error =, code =}...} in that order.
function Engine:cancel(id, reason, opts)
  opts = check_opts("cancel", opts)
  if not opts.tree then return raw_cancel(self, id, reason) end
  local t, msg, code = self:tree(id)
  if not t then return nil, msg, code end
  local done = {}
  local function walk(node)
    for _, c in ipairs(node.children) do walk(c) end
    local r = node.record
    if not TERMINAL[r.status] then
      local seq, m, c = raw_cancel(self, r.id, reason)
      done[#done + 1] = { id = r.id, seq = seq, error = not seq and m or nil,
        code = not seq and c or nil }
    end
  end
  walk(t)
  return done
end

M.Engine = Engine
M.Ctx = Ctx

return M

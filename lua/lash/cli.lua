--- lash.cli: the operator commands of the `lash` executable (DESIGN §6).
---
--- Everything goes through the Lua API (`require "lash"`). The executable's
--- host module `lash.host` adds signals, line input, the store audit and
--- pausing admission; main(arg) returns the exit code: 0 ok, 1 failure,
--- 2 usage. Arguments are checked completely before the store is opened,
--- so a rejected command writes nothing.
local lash = require "lash"
local format = require "lash.format"

local M = {}

local host_mod
local function host()
  if host_mod == nil then
    local ok, h = pcall(require, "lash.host")
    host_mod = ok and h or false
  end
  return host_mod or nil
end

local STATUSES = lash.STATUSES
local TERMINAL = lash.set_of(lash.TERMINAL)
local DISPOSITIONS = lash.set_of(lash.DISPOSITIONS)

-- ------------------------------------------------------------ commands

-- Option kinds: flag, string, int (>= 0), list (repeatable string),
-- duration ("7d"). `args` names the positionals ([X] optional, X... rest).
local COMMANDS = {
  repl = {
    args = {}, creates = true,
    summary = "interactive Lua prompt on the store (the default on a terminal)",
    help = [[
The REPL preloads `lash` and `eng` (the open store). Expressions print their
value; incomplete input continues on a `>>` prompt; records, events and
outcomes are pretty-printed. The engine keeps running while the prompt
waits, so bodies started at the prompt progress. Ctrl-C interrupts the
running chunk, Ctrl-D exits. History: $LASH_HISTORY or ~/.lash_history.]],
  },
  run = {
    args = { "FILE", "ARGS..." }, creates = true, rest_is_script = true,
    summary = "run a Lua script with `lash` and `eng` preloaded, then drive until idle",
    help = [[
FILE (or - for stdin) runs with the globals `lash`, `eng` (the open store)
and `arg` (arg[0] = FILE). Afterwards the engine runs until idle. A script
that returns an integer exits with it.]],
  },
  worker = {
    opts = { load = "list", concurrency = "int", grace = "duration", owner = "string",
      metrics = "string", ["log-format"] = "string", quiet = "flag", verbose = "flag" },
    creates = true,
    usage = "worker --load FILE|DIR... [--concurrency N] [--grace DURATION] [--owner NAME] " ..
      "[--metrics ADDR] [--log-format human|json] [--quiet] [--verbose]",
    summary = "run the processes of the loaded kinds until SIGINT/SIGTERM",
    help = [[
Each --load is a file returning {kind = fn | {fn, opts}} or a directory of
such files. On SIGINT or SIGTERM the worker stops admitting rows, lets
running bodies finish within the grace period (--grace, default 10s; a bare
number is milliseconds),
abandons the owner_bound rows it could not finish, releases its leases and
exits 0. A second signal ends the grace period at once. If a body keeps the
loop stuck (it never yields) when the grace period ends, the leases are
released and owner_bound rows abandoned all the same, and the worker
exits 1.
--metrics ADDR (e.g. 127.0.0.1:9464) serves GET /metrics (what `lash
metrics` prints, with this worker's own counters) on the worker's loop.
The log (stderr) has one line per notable moment: a failure (kind, id,
attempt, the error's first line), a retry, a lease lost or taken over, the
suspensions of each minute, a storage error with what to do. --log-format
json writes one JSON object per line instead; --quiet keeps only errors and
warnings, --verbose adds every completion, cancellation and suspension.]],
  },
  start = {
    args = { "KIND", "[JSON]" },
    opts = { id = "string", disposition = "string", ["max-attempts"] = "int", json = "flag",
      ["if-exists"] = "string",
      delay = "duration", at = "string", retry = "string", -- issue 13 (retry)
      priority = "string", ["concurrency-key"] = "string", ["concurrency-limit"] = "int",
      ["unique-key"] = "string", ["unique-for"] = "duration" },
    creates = true,
    usage = "start KIND [JSON] [--id ID] [--disposition D] [--max-attempts N] " ..
      "[--delay D] [--at TIME] [--retry N|JSON] " ..
      "[--priority N] [--concurrency-key K] [--concurrency-limit N] " ..
      "[--unique-key K [--unique-for D]] [--if-exists ok] [--json]",
    summary = "register a process of KIND with input JSON; prints its id",
    help = [[
JSON is the input (default null). --disposition is one of
]] .. table.concat(lash.DISPOSITIONS, ", ") .. [[ (default rerunnable).
Starting again with the same --id and definition prints the same id; if
that process has already ended, start says so ("ID: already failed") and
exits 1, unless --if-exists ok.
--delay 5s or --at 2026-12-24T18:00Z (ISO 8601, Z or an offset) makes the
row claimable only from then. --retry 5 retries a raising body up to 5
attempts in all (backoff 1s, doubling); --retry '{"max_attempts":5,
"initial_ms":500,"factor":2,"max_ms":30000,"jitter":0.2}' says it all.
--priority N (an integer, may be negative; default 0): higher is claimed
first, in creation order within one priority. --concurrency-key K with
--concurrency-limit N (default 1): at most N processes of key K run at
once across every worker; the others wait without holding a slot.
--unique-key K: while a process started with key K is live (or, with
--unique-for 10m, ended less than that ago), start creates nothing and
prints that process's id.]],
  },
  retry = { -- issue 13 (retry)
    args = { "ID" }, opts = { json = "flag" },
    summary = "run a failed process again as a new attempt",
    help = [[
The row becomes pending; a worker that defines its kind runs it as the next
attempt (its journal replays: completed steps are not run again). Only a
failed row can be retried; any other status is an error naming it.]],
  },
  ps = {
    opts = { status = "string", kind = "string", limit = "int", after = "string",
      sort = "string", json = "flag" },
    usage = "ps [--status S] [--kind K] [--limit N] [--after ID] [--sort ORDER] [--json]",
    summary = "list processes: id, kind, status, attempt, age",
    help = "--status is " .. table.concat(STATUSES, ", ") .. " or live.\n" .. [[
Rows come in id order (generated ids are time-ordered, so oldest first);
--sort newest (or oldest) orders them by creation time instead (it reads
every matching row to sort them). --limit N shows at most N (default 100,
0: no limit) and says how many it left out; --after ID starts after that
id in the order shown (the next page).]],
  },
  show = {
    args = { "ID" }, opts = { json = "flag" },
    summary = "show one process: its record, lease and owner, progress, parent, children",
    help = [[
Besides the record: who holds its lease until when and whether that owner is
alive (its owner lock), the latest progress event, when a wait ends, the
parent and the children with their statuses, and a failure's traceback.
--json prints the record with "lease", "progress", "children" added.]],
  },
  events = {
    args = { "ID" }, opts = { after = "int", follow = "flag", json = "flag", full = "flag" },
    usage = "events ID [--after N] [--follow] [--full] [--json]",
    summary = "list the events of a process (--follow: print new ones as they land)",
    help = [[
--after N shows events with seq > N. --follow keeps printing new events until
the process ends (with --json: one JSON object per line). The KEY column shows
the replay keys of keyed events (journaled commands cmd:<n>, signal --key);
--json also gives the keys lifecycle events are read with (process:...).
--full prints every payload whole (under its event's line) instead of cut to
one cell.]],
  },
  top = {
    opts = { interval = "duration" },
    usage = "top [--interval DURATION]",
    summary = "a live view: counts, throughput, backlog, workers, latest failures (q quits)",
    help = [[
Redraws every --interval (default 250ms: 4 times a second) on a terminal:
counts per status and per kind, rows ended per second over the last minute
as a sparkline, the backlog and its oldest age, rows of kinds no live worker
defines, the workers with their heartbeat, the latest failures. q or Ctrl-C
quits and puts the terminal back. Every frame reads the store's counters;
the bounded scans behind the rest run at most once a second.]],
  },
  tree = {
    args = { "ID" }, opts = { json = "flag" },
    summary = "draw a process and its descendants with their statuses",
  },
  await = {
    args = { "ID" }, opts = { timeout = "duration", json = "flag" },
    usage = "await ID [--timeout DURATION] [--json]",
    summary = "wait for the outcome of a process and print it",
    help = [[
--timeout is a duration (5000 or 5000ms, 5s, 2m; a bare number is
milliseconds). Exits 1 unless the process completed (failed, cancelled,
abandoned, pruned or timed out).]],
  },
  signal = {
    args = { "ID", "NAME", "[JSON]" }, opts = { json = "flag", key = "string" },
    usage = "signal ID NAME [JSON] [--key K] [--json]",
    summary = "send signal NAME (event signal.NAME) with payload JSON",
    help = [[
--key K gives the signal a replay key: sending it again with the same key
and payload writes nothing and prints the first signal's seq ("replayed");
the same key with another payload fails (ECONFLICT).]],
  },
  cancel = {
    args = { "ID", "[REASON]" }, opts = { json = "flag", tree = "flag" },
    usage = "cancel ID [REASON] [--tree] [--json]",
    summary = "request the cancellation of a process",
    help = [[
--tree cancels its live descendants too (children first), one line each.

A pending row is cancelled at once. A row whose owner is gone (its lease
lapsed, or its owner process died on this host) and that will not run again
(owner_bound and started, or rerunnable out of attempts) is ended cancelled
by this command; a live owner's body sees the request (ctx:cancelled()).]],
  },
  abandon = {
    args = { "ID", "[REASON]" }, opts = { json = "flag" },
    summary = "request that a process be abandoned; ends it now if its owner is gone",
    help = [[
Records an abandon request (process.abandon_requested). When no execution
of the row is live (its owner's lease lapsed or its owner process is gone)
the row is ended abandoned (writer reconciled_request) by this command;
otherwise by the next drive of any worker once that is so. A row of a live
owner is left to it.]],
  },
  prune = {
    opts = { ["older-than"] = "duration", status = "string", json = "flag" },
    required = { "older-than" },
    usage = "prune --older-than DURATION [--status S] [--json]",
    summary = "remove terminal processes last updated before DURATION ago",
    help = "DURATION is like 7d, 12h, 30m, 10s or 500ms (a bare number is milliseconds).\n" ..
      "--status is a terminal status.",
  },
  stats = {
    opts = { json = "flag" },
    summary = "counts per status, store size and change sequence",
  },
  metrics = {
    summary = "print the store's metrics in Prometheus text exposition",
    help = [[
Counts per kind and status, the backlog and the age of its oldest row,
duration histograms per kind (registration -> end, last attempt -> end), the
store's size, change sequence and longest write (fsync included). A worker
serves the same, with its engine's counters, under `lash worker --metrics`.]],
  },
  ui = {
    opts = { listen = "string" },
    usage = "ui [--listen ADDR]",
    summary = "serve the web UI (overview, list, process timelines) until SIGINT/SIGTERM",
    help = [[
Serves a page on ADDR (default 127.0.0.1:8080; port 0 takes a free one):
the overview of `lash top`, a filterable list, and each process's timeline
with buttons to signal and cancel it. It prints the address; on an address
other than a loopback one it also prints an access token, which every
request must carry (the printed link sets it as a cookie).]],
  },
  check = {
    opts = { json = "flag", salvage = "string" },
    usage = "check [--salvage DIR] [--json]",
    summary = "audit the store (record folds, indexes, leases); exit 1 on a problem",
    help = [[
The walk runs in a child process: a page so damaged that reading it would
crash (SIGBUS, SIGSEGV) is reported as damage where it was met, and an empty
or truncated data file is a problem too. Records, events and leases carry a
CRC-32C checksum; a mismatch names the process and the event.
--salvage DIR copies every readable row (record and events; leases dropped)
into a new store at DIR and says how many rows it copied and skipped.]],
  },
  schedules = {
    opts = { json = "flag" },
    summary = "list the cron schedules with their next three ticks",
  },
  schedule = {
    args = { "NAME", "SPEC", "KIND", "[JSON]" },
    opts = { tz = "string", ["catch-up"] = "string", json = "flag" },
    creates = true,
    usage = "schedule NAME SPEC KIND [JSON] [--tz TZ] [--catch-up MODE] [--json]",
    summary = "add (or replace) a durable cron schedule starting KIND with input JSON",
    help = [[
SPEC is five cron fields (minute hour day-of-month month day-of-week; ranges
1-5, steps */15, lists 1,3, names JAN..DEC and SUN..SAT), six with a leading
seconds field, or an alias: @yearly @monthly @weekly @daily @hourly, or
@every DURATION (30s, 5m, 1h30m). Quote it in the shell. Each tick starts
one process NAME@TICK (TICK in ISO 8601 UTC) exactly once, whichever
workers run KIND. --tz is a tz database name (default UTC). --catch-up
says what a worker does with ticks missed while none ran: skip (default:
none), one (the latest) or all (each). Scheduling NAME again with other
arguments replaces it (and says so).]],
  },
  unschedule = {
    args = { "NAME" }, opts = { json = "flag" },
    summary = "remove a cron schedule (the processes it started stay)",
  },
  kinds = {
    opts = { json = "flag" },
    usage = "kinds [--json]",
    summary = "kinds: stored definitions, live workers defining them, rows waiting",
    help = [[
Each kind with a definition in the store (written by define and lash worker
--load, versioned) or with pending rows: its version and options, the live
workers that define it now, and how many pending rows wait for a worker
(rows of a kind no live worker defines).]],
  },
  workers = {
    opts = { json = "flag" },
    usage = "workers [--json]",
    summary = "the workers of the store: owner, pid, host, kinds, heartbeat, alive",
    help = [[
Every engine that defines kinds has an entry while it runs (removed when it
closes). ALIVE is "no" once the store knows its process is gone (its owner
lock was released by its death: a kill -9 included); such an entry is
removed by the next worker that writes anyway.]],
  },
  migrate = {
    opts = { from = "string", to = "string", json = "flag" },
    required = { "from", "to" },
    usage = "migrate --from STORE --to STORE [--json]",
    summary = "copy a store into an empty one (LMDB directory <-> postgresql://...)",
    help = [[
Copies every process (record, events with their replay keys, timers and
waits), every tombstone and the counters of --from into --to, which must be
empty (a new directory or schema; it is created). Leases are released in the
copy: a row running at the source is claimable on the target at once (its
fence keeps growing from the copied value), a suspended row resumes there.
Stop the workers of --from first. Then both stores are checked (lash check)
and the counts printed: processes per status, events, tombstones, leases
released. Exit 1 when the copy failed or a check found a problem.]],
  },
  help = {
    args = { "[COMMAND]" },
    summary = "show the help of a command",
  },
}

local ORDER = { "repl", "run", "worker", "start", "ps", "show", "events", "tree", "top",
  "await", "signal", "cancel", "abandon", "prune", "stats", "metrics", "ui", "check", "kinds",
  "workers", "migrate", "help", "retry", "schedules", "schedule", "unschedule" }

-- Options of the store, taken by every command (before or after it):
-- lash.open's max_bytes, max_readers and lease_ttl_ms.
local STORE_FLAGS = { ["map-size"] = "size", ["max-readers"] = "int", ["lease-ttl"] = "duration" }
local STORE_USAGE = "[--read-only] [--map-size SIZE] [--max-readers N] [--lease-ttl DURATION]"

-- "64g", "512m", "100k", "4096" (bytes) -> bytes, or nil, why.
local function parse_size(v)
  local n, unit = tostring(v):lower():match("^(%d+)([kmgt]?)i?b?$")
  n = math.tointeger(tonumber(n))
  if not n or n == 0 then
    return nil, 'needs a size such as 64g, 512m or 1048576 (bytes), got "' .. tostring(v) .. '"'
  end
  local shift = ({ [""] = 0, k = 10, m = 20, g = 30, t = 40 })[unit]
  return n << shift
end

local function usage_line(name)
  local c = COMMANDS[name]
  if c.usage then return "lash [--db DIR] " .. c.usage end
  local parts = { "lash [--db DIR]", name }
  for _, a in ipairs(c.args or {}) do parts[#parts + 1] = a end
  local opts = {}
  for o, kind in pairs(c.opts or {}) do
    local meta = ({ string = " " .. o:upper():gsub("%-", "_"), int = " N",
      duration = " DURATION", list = " X" })[kind] or ""
    opts[#opts + 1] = "[--" .. o .. meta .. "]"
  end
  table.sort(opts)
  for _, o in ipairs(opts) do parts[#parts + 1] = o end
  return table.concat(parts, " ")
end

local function general_usage()
  local lines = {
    "usage: lash [--db DIR] " .. STORE_USAGE .. " [COMMAND] [ARGS] [--help]",
    "       lash --version",
    "",
    "A durable process engine. DIR is the store (default $LASH_DB, else ./lash.db).",
    "--map-size caps the store's size (64g, 512m; default: no cap, the map grows),",
    "--max-readers sets its reader slots (default 1024), --lease-ttl the lease of",
    "the rows this process runs (default 30s). Each goes before or after COMMAND.",
    "",
    "commands:",
  }
  local width = 8
  for _, n in ipairs(ORDER) do width = math.max(width, #n) end
  for _, n in ipairs(ORDER) do
    lines[#lines + 1] = string.format("  %-" .. width .. "s %s", n, COMMANDS[n].summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Read commands take --json. Exit codes: 0 ok, 1 failure, 2 usage."
  lines[#lines + 1] = "`lash COMMAND --help` describes a command."
  return table.concat(lines, "\n")
end

local function command_help(name)
  local c = COMMANDS[name]
  local out = { "usage: " .. usage_line(name), "", c.summary }
  if c.help then
    out[#out + 1] = ""
    out[#out + 1] = c.help
  end
  return table.concat(out, "\n")
end

-- ------------------------------------------------------------- results

local Exit = {}
Exit.__index = Exit

-- error objects carried to main: {code, msg, cmd}
local function usage_error(cmd, msg)
  error(setmetatable({ code = 2, msg = msg, cmd = cmd, usage = true }, Exit), 0)
end

local function failure(cmd, msg)
  error(setmetatable({ code = 1, msg = msg, cmd = cmd }, Exit), 0)
end

local out = io.stdout
local function say(...)
  out:write(...)
  out:write("\n")
end


-- ------------------------------------------------------------ parsing

local function parse_int(cmd, opt, v)
  local n = math.tointeger(tonumber(v))
  if not n or not tostring(v):match("^%d+$") then
    usage_error(cmd, "--" .. opt .. ' needs a non-negative integer, got "' .. tostring(v) .. '"')
  end
  return n
end

-- Parses the arguments of command `name` from args[i..]. Returns
-- positionals, options.
-- Parses the value of store flag `key` into store (a table); a bad value
-- is a usage error of `cmd`.
local function store_flag(cmd, store, key, val)
  local kind = STORE_FLAGS[key]
  if val == nil then usage_error(cmd, "--" .. key .. " needs a value") end
  if kind == "size" then
    local n, why = parse_size(val)
    if not n then usage_error(cmd, "--" .. key .. " " .. why) end
    store.max_bytes = n
  elseif kind == "int" then
    local n = parse_int(cmd, key, val)
    if n == 0 then usage_error(cmd, "--" .. key .. " must be >= 1") end
    store.max_readers = n
  else
    local ms, why = format.duration(val)
    if not ms then usage_error(cmd, "--" .. key .. ": " .. why) end
    if ms <= 0 then usage_error(cmd, "--" .. key .. " must be > 0") end
    store.lease_ttl_ms = ms
  end
end

local function parse(name, args, i, store)
  local c = COMMANDS[name]
  local specs = c.opts or {}
  local pos, opts = {}, { help = false }
  local n = #args
  local only_pos = false
  while i <= n do
    local a = args[i]
    if not only_pos and a == "--" then
      only_pos = true
    elseif not only_pos and (a == "--help" or a == "-h") then
      opts.help = true
    elseif not only_pos and a:sub(1, 2) == "--" and #a > 2 and
      not (c.rest_is_script and #pos > 0) then
      local key, val = a:match("^%-%-([^=]+)=(.*)$")
      key = key or a:sub(3)
      if key == "db" then
        if val == nil then
          i = i + 1
          val = args[i]
          if val == nil then usage_error(name, "--db needs a directory") end
        end
        opts.db = val
      elseif STORE_FLAGS[key] and name ~= "help" then
        if val == nil then
          i = i + 1
          val = args[i]
        end
        store_flag(name, store, key, val)
      else
        local kind = specs[key]
        if not kind then usage_error(name, 'unknown option "--' .. key .. '"') end
        if kind == "flag" then
          if val ~= nil then usage_error(name, "--" .. key .. " takes no value") end
          opts[key] = true
        else
          if val == nil then
            i = i + 1
            val = args[i]
            if val == nil then usage_error(name, "--" .. key .. " needs a value") end
          end
          if kind == "int" then
            val = parse_int(name, key, val)
          elseif kind == "duration" then
            local ms, why = format.duration(val)
            if not ms then usage_error(name, "--" .. key .. ": " .. why) end
            val = ms
          end
          if kind == "list" then
            opts[key] = opts[key] or {}
            table.insert(opts[key], val)
          else
            opts[key] = val
          end
        end
      end
    elseif not only_pos and a:sub(1, 1) == "-" and #a > 1 and not a:match("^%-[%d.]") and
      not (c.rest_is_script and #pos > 0) then
      -- (a negative number such as -1 or -0.5 is an argument: JSON input)
      usage_error(name, 'unknown option "' .. a .. '"')
    else
      pos[#pos + 1] = a
      if c.rest_is_script then only_pos = true end
    end
    i = i + 1
  end
  if opts.help then return pos, opts end
  -- positionals: required, [optional], REST...
  local want = c.args or {}
  local min, max = 0, 0
  for _, w in ipairs(want) do
    if w:sub(-3) == "..." then
      max = math.huge
    elseif w:sub(1, 1) == "[" then
      max = max + 1
    else
      min, max = min + 1, max + 1
    end
  end
  if #pos < min then usage_error(name, "missing " .. want[#pos + 1]) end
  if #pos > max then usage_error(name, 'unexpected argument "' .. pos[max + 1] .. '"') end
  for _, r in ipairs(c.required or {}) do
    if opts[r] == nil then usage_error(name, "--" .. r .. " is required") end
  end
  return pos, opts
end

local function json_arg(cmd, what, s)
  if s == nil then return nil end
  local ok, v = format.from_json(s)
  if not ok then usage_error(cmd, "bad JSON " .. what .. ": " .. v) end
  return v
end

local function check_status(cmd, st, allowed)
  if st == nil then return end
  if not allowed[st] then
    local names = {}
    for _, n in ipairs(STATUSES) do
      if allowed[n] then names[#names + 1] = n end
    end
    if allowed.live then names[#names + 1] = "live" end
    usage_error(cmd, 'unknown status "' .. st .. '" (' .. table.concat(names, ", ") .. ")")
  end
end

-- ------------------------------------------------------------ the store

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- A command that does not create the store first opens it read-only, which
-- creates nothing: whether a store is there is the core's to say.
local function store_exists(db)
  local eng, _, code = lash.open(db, { read_only = true })
  if eng then eng:close() end
  return eng ~= nil or code ~= "EACCES"
end

local function open_store(cmd, db, creates, opts)
  if not creates and not store_exists(db) then
    failure(cmd, "no store at " .. db .. " (give --db DIR or set LASH_DB)")
  end
  local eng, msg = lash.open(db, opts or {})
  if not eng then failure(cmd, "cannot open the store " .. db .. ": " .. tostring(msg)) end
  if opts and opts.read_only then
    local st = eng:stats()
    if st and st.no_lock then
      io.stderr:write("lash: note: ", db, " is not writable by this user: reading it without ",
        "its lock (a writer running meanwhile may change what this read sees)\n")
    end
  end
  return eng
end

-- Closes eng; the host's watch (signal pipe, stdin) goes first, because its
-- handles live on the engine's loop.
local function close_store(eng)
  local h = host()
  if h and h.watching(eng) then h.unwatch() end
  pcall(eng.close, eng)
end

local function is_open(eng)
  return (pcall(eng.path, eng))
end

-- Opens the store and returns eng:METHOD(...), eng; a failure ends `cmd`.
local function read_store(ctx, cmd, method, ...)
  local eng = ctx.open()
  local r, msg = eng[method](eng, ...)
  if not r then failure(cmd, msg) end
  return r, eng
end

local function unknown_or_fail(cmd, id, msg, code)
  if code == "ENOENT" then failure(cmd, 'unknown process "' .. id .. '"') end
  failure(cmd, tostring(msg))
end

-- --------------------------------------------------------- the commands

local run = {}
local mark_orphans -- (kinds and workers, below)

-- issue 13 (retry): --delay, --at and --retry of `lash start` into the
-- start options `so`.
local function start_issue13(cmd, opts, so)
  if opts.delay ~= nil and opts.at ~= nil then
    usage_error(cmd, "--delay and --at are both given: give one")
  end
  if opts.delay ~= nil then so.delay_ms = opts.delay end
  if opts.at ~= nil then
    local at, why = require("lash.retry").parse_time(opts.at)
    if not at then usage_error(cmd, "--at: " .. why) end
    so.run_at = at
  end
  if opts.retry ~= nil then
    local n = math.tointeger(tonumber(opts.retry))
    if n then
      so.retry = { max_attempts = n }
    else
      local policy = json_arg(cmd, "--retry", opts.retry)
      if type(policy) ~= "table" or policy[1] ~= nil then
        usage_error(cmd, "--retry takes a number of attempts or a JSON object, got " .. opts.retry)
      end
      local ok, why = pcall(require("lash.retry").policy, "start", policy)
      if not ok then
        usage_error(cmd, "--retry: " .. tostring(why):gsub("^.-bad argument", "bad"))
      end
      so.retry = policy
    end
  end
end

function run.retry(ctx, pos, opts)
  local id = pos[1]
  local eng = ctx.open()
  local seq, msg, code = eng:retry(id)
  if not seq then unknown_or_fail("retry", id, msg, code) end
  if opts.json then
    say(format.json({ id = id, seq = seq }))
  else
    say(id .. ": retried (event " .. seq .. ")")
  end
end

function run.start(ctx, pos, opts)
  local kind, input = pos[1], json_arg("start", "input", pos[2])
  if opts.disposition and not DISPOSITIONS[opts.disposition] then
    usage_error("start", 'unknown disposition "' .. opts.disposition ..
      '" (' .. table.concat(lash.DISPOSITIONS, ", ") .. ")")
  end
  if kind == "" then usage_error("start", "KIND must not be empty") end
  if opts.id and (#opts.id == 0 or #opts.id > lash.ID_MAX) then
    usage_error("start", "--id must be 1 to " .. lash.ID_MAX .. " bytes, got " .. #opts.id)
  end
  if opts["max-attempts"] == 0 then usage_error("start", "--max-attempts must be >= 1") end
  if opts["if-exists"] ~= nil and opts["if-exists"] ~= "ok" then
    usage_error("start", '--if-exists takes "ok", got "' .. opts["if-exists"] .. '"')
  end
  -- issue 13 (claim): priority, concurrency key and limit
  local prio
  if opts.priority ~= nil then
    prio = math.tointeger(tonumber(opts.priority))
    if not prio or not opts.priority:match("^[-+]?%d+$") then
      usage_error("start", '--priority needs an integer, got "' .. opts.priority .. '"')
    end
  end
  if opts["concurrency-limit"] ~= nil and opts["concurrency-key"] == nil then
    usage_error("start", "--concurrency-limit needs --concurrency-key (the limit is per key)")
  end
  if opts["unique-for"] ~= nil and opts["unique-key"] == nil then
    usage_error("start", "--unique-for needs --unique-key (the window is the key's)")
  end
  local sopts = { id = opts.id, disposition = opts.disposition,
    max_attempts = opts["max-attempts"], priority = prio,
    concurrency_key = opts["concurrency-key"],
    concurrency_limit = opts["concurrency-limit"],
    unique_key = opts["unique-key"], unique_for_ms = opts["unique-for"] }
  start_issue13("start", opts, sopts) -- (retry): --delay, --at, --retry
  local eng = ctx.open(true)
  local id, created, code = eng:register(kind, input, sopts)
  if not id then
    if code == "EINVAL" then usage_error("start", created) end
    failure("start", created)
  end
  -- A row that was there already and has ended: nothing was started. (One
  -- this call created may have ended by now too: a worker ran it.) A unique
  -- key's holder is the answer asked for, ended or not.
  local r = not created and eng:get(id)
  local deduped = opts["unique-key"] ~= nil and id ~= opts.id
  if r and TERMINAL[r.status] and opts["if-exists"] ~= "ok" and not deduped then
    failure("start", id .. ": already " .. r.status ..
      " (nothing started; give another --id, or --if-exists ok)")
  end
  if opts.json then say(format.json({ id = id })) else say(id) end
end

function run.ps(ctx, _, opts)
  local allowed = { live = true }
  for _, s in ipairs(STATUSES) do allowed[s] = true end
  check_status("ps", opts.status, allowed)
  local sort = opts.sort
  if sort ~= nil and sort ~= "newest" and sort ~= "oldest" and sort ~= "id" then
    usage_error("ps", 'unknown --sort "' .. sort .. '" (newest, oldest or id)')
  end
  if sort == "id" then sort = nil end
  local limit = opts.limit or 100
  local list, eng
  if sort == nil then
    -- One row more than asked says whether rows were left out.
    list, eng = read_store(ctx, "ps", "list", { status = opts.status, kind = opts.kind,
      limit = limit > 0 and limit + 1 or 0, after = opts.after })
  else
    -- By creation time: every matching row, sorted here (ties by id).
    local all
    all, eng = read_store(ctx, "ps", "list", { status = opts.status, kind = opts.kind })
    local newest = sort == "newest"
    table.sort(all, function(a, b)
      if a.created_at ~= b.created_at then
        if newest then return a.created_at > b.created_at end
        return a.created_at < b.created_at
      end
      if newest then return a.id > b.id end
      return a.id < b.id
    end)
    local from = 1
    if opts.after ~= nil then
      from = #all + 1
      for i, r in ipairs(all) do
        if r.id == opts.after then from = i + 1 break end
      end
    end
    list = {}
    for i = from, #all do
      if limit > 0 and #list > limit then break end
      list[#list + 1] = all[i]
    end
  end
  local more = limit > 0 and #list > limit
  if more then list[#list] = nil end
  if opts.json then
    say(format.json(list, { array = true }))
  elseif #list == 0 then
    say("no processes")
  else
    local orphans = mark_orphans(eng, list)
    say(format.records(list, eng:now()))
    for _, k in ipairs(orphans) do say("(no worker defines kind " .. format.text(k) ..
      ": its pending rows wait; lash kinds)") end
  end
  if more and not opts.json then
    local total
    if opts.kind == nil and opts.after == nil then
      local s = eng:stats()
      total = s and s[opts.status or "total"]
    end
    io.stderr:write(string.format("(%s not shown: lash ps --after %s%s%s for the next page)\n",
      total and ((total - #list) .. " more") or "more", list[#list].id,
      limit ~= 100 and (" --limit " .. limit) or "", sort and (" --sort " .. sort) or ""))
  end
end

-- The schedule that started process r (its id is NAME@TICK of a schedule
-- of its kind), and the tick; or nil.
local function schedule_of(eng, r)
  local name, tick = r.id:match("^(.*)@(%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z)$")
  if not name then return nil end
  local sc = eng:schedules()
  for _, s in ipairs(sc or {}) do
    if s.name == name and s.kind == r.kind then return s, tick end
  end
end

function run.show(ctx, pos, opts)
  local eng = ctx.open()
  local r, msg, code = eng:get(pos[1])
  if not r then unknown_or_fail("show", pos[1], msg, code) end
  local more = { lease = eng:lease(r.id), events = eng:events(r.id, 0) or {},
    children = eng:children(r.id) or {} }
  if r.parent then more.parent = eng:get(r.parent) end
  -- the store's live workers, read once: the lease holder's heartbeat and
  -- whether any worker defines the row's kind
  local workers = eng:workers()
  if more.lease then
    for _, w in ipairs(workers or {}) do
      if w.owner == more.lease.owner and w.incarnation == more.lease.incarnation then
        more.heartbeat = w.heartbeat_at
      end
    end
  end
  local sc, tick = schedule_of(eng, r)
  if sc then
    r.schedule = { name = sc.name, spec = sc.spec, tz = sc.tz, catch_up = sc.catch_up,
      tick = tick }
  end
  if opts.json then
    r.lease = more.lease
    if r.lease then r.lease.heartbeat_at = more.heartbeat end
    for i = #more.events, 1, -1 do
      if more.events[i].type == "progress" then
        r.progress = more.events[i]
        break
      end
    end
    local kids = {}
    for i, c in ipairs(more.children) do
      kids[i] = { id = c.id, kind = c.kind, status = c.status }
    end
    r.children = lash.array(kids)
    say(format.json(r))
  else
    mark_orphans(eng, { r }, workers)
    say(format.record(r, eng:now(), more))
  end
end

-- ----------------------------------------- kinds and workers (issue 11)

-- Marks the pending rows of `list` whose kind no live worker defines
-- (r.no_worker = true); returns those kinds, sorted. `workers`: the list of
-- eng:workers() when the caller has read it already.
mark_orphans = function(eng, list, workers)
  workers = workers or eng:workers()
  if not workers then return {} end
  local live, kinds, found = {}, {}, {}
  for _, w in ipairs(workers) do
    if w.alive then for _, k in ipairs(w.kinds) do live[k] = true end end
  end
  for _, r in ipairs(list) do
    if r.status == "pending" and not live[r.kind] then
      r.no_worker = true
      if not kinds[r.kind] then
        kinds[r.kind] = true
        found[#found + 1] = r.kind
      end
    end
  end
  table.sort(found)
  return found
end

local function worker_names(ws)
  local names = {}
  for i, w in ipairs(ws) do names[i] = w.owner .. " (pid " .. w.pid .. ")" end
  return names
end

function run.kinds(ctx, _, opts)
  local list = read_store(ctx, "kinds", "kinds")
  if opts.json then
    say(format.json(list, { array = true }))
    return
  end
  if #list == 0 then
    say("no kinds")
    return
  end
  local rows = {}
  for _, k in ipairs(list) do
    local ws = worker_names(k.workers)
    rows[#rows + 1] = { format.text(k.kind), k.version and tostring(k.version) or "-",
      k.options and format.value(k.options) or "(not defined)",
      #ws > 0 and table.concat(ws, ", ") or "none", tostring(k.waiting) }
  end
  say(format.columns({ "KIND", "VERSION", "OPTIONS", "WORKERS", "WAITING" }, rows))
end

function run.workers(ctx, _, opts)
  local list, eng = read_store(ctx, "workers", "workers")
  if opts.json then
    say(format.json(list, { array = true }))
    return
  end
  if #list == 0 then
    say("no workers")
    return
  end
  local now, rows = eng:now(), {}
  for _, w in ipairs(list) do
    rows[#rows + 1] = { format.text(w.owner), tostring(w.pid), format.text(w.host),
      table.concat(w.kinds, ","), format.age(now - w.started_at),
      format.age(math.max(0, now - w.heartbeat_at)) .. " ago", w.alive and "yes" or "no" }
  end
  say(format.columns({ "OWNER", "PID", "HOST", "KINDS", "UP", "HEARTBEAT", "ALIVE" }, rows))
end

function run.top(ctx, _, opts)
  if opts.interval == 0 then usage_error("top", "--interval must be > 0") end
  local eng = ctx.open()
  local h = host()
  if h then h.trap("INT", "TERM") end
  local ok, why = require("lash.top").run(eng, { interval_ms = opts.interval, host = h })
  if not ok then failure("top", tostring(why) .. " (lash top needs a terminal)") end
end

function run.tree(ctx, pos, opts)
  local eng = ctx.open()
  local t, msg, code = eng:tree(pos[1])
  if not t then unknown_or_fail("tree", pos[1], msg, code) end
  if opts.json then
    local function plain(node)
      local kids = {}
      for i, c in ipairs(node.children) do kids[i] = plain(c) end
      local r = node.record
      return { id = r.id, kind = r.kind, status = r.status, children = lash.array(kids) }
    end
    say(format.json(plain(t)))
  else
    say(format.tree(t))
  end
end

function run.schedules(ctx, _, opts)
  local list = read_store(ctx, "schedules", "schedules")
  if opts.json then
    say(format.json(list, { array = true }))
  elseif #list == 0 then
    say("no schedules")
  else
    say(format.schedules(list))
  end
end

local CATCH_UP = lash.set_of({ "skip", "one", "all" })

function run.schedule(ctx, pos, opts)
  local name, spec, kind = pos[1], pos[2], pos[3]
  local input = json_arg("schedule", "input", pos[4])
  if name == "" then usage_error("schedule", "NAME must not be empty") end
  if kind == "" then usage_error("schedule", "KIND must not be empty") end
  local cu = opts["catch-up"]
  if cu ~= nil and not CATCH_UP[cu] then
    usage_error("schedule", 'unknown --catch-up "' .. cu .. '" (skip, one or all)')
  end
  -- The spec and the zone are checked before the store is touched.
  local ticks, why = lash.cron_ticks(spec, { tz = opts.tz, n = 1 })
  if not ticks then usage_error("schedule", why) end
  local eng = ctx.open(true)
  local ok, how, code = eng:schedule(name, spec, kind, input, { tz = opts.tz, catch_up = cu })
  if not ok then
    if code == "EINVAL" then usage_error("schedule", how) end
    failure("schedule", how)
  end
  local sc = eng:schedules()
  local mine
  for _, s in ipairs(sc or {}) do
    if s.name == name then mine = s end
  end
  if opts.json then
    say(format.json({ name = name, result = how, ticks = mine and mine.ticks }))
  else
    local next = {}
    for i, t in ipairs(mine and mine.ticks or {}) do next[i] = format.iso(t) end
    say(string.format("schedule %s %s; next ticks %s", name, how, table.concat(next, " ")))
  end
end

function run.unschedule(ctx, pos, opts)
  local eng = ctx.open()
  local ok, msg, code = eng:unschedule(pos[1])
  if not ok then
    if code == "ENOENT" then failure("unschedule", 'no schedule "' .. pos[1] .. '"') end
    failure("unschedule", msg)
  end
  if opts.json then say(format.json({ name = pos[1], removed = true })) else
    say("schedule " .. pos[1] .. " removed")
  end
end

function run.events(ctx, pos, opts)
  local id = pos[1]
  local eng = ctx.open()
  local r, msg, code = eng:get(id)
  if not r then unknown_or_fail("events", id, msg, code) end
  local list
  list, msg = eng:events(id, opts.after or 0)
  if not list then failure("events", msg) end
  if not opts.follow then
    if opts.json then
      say(format.json(list, { array = true }))
    elseif #list == 0 then
      say("no events")
    else
      say(format.events(list, nil, opts.full))
    end
    return
  end
  -- --follow: print as they land, until the process is terminal.
  local last = opts.after or 0
  local function emit(evs)
    for _, ev in ipairs(evs) do
      say(opts.json and format.json(ev) or format.event_line(ev, opts.full))
      last = ev.seq
    end
    out:flush()
  end
  emit(list)
  local h = host()
  if h then
    h.watch(eng)
    h.trap("INT", "TERM")
  end
  -- Wait for the next event of any type ("*") through the awaiter, so each
  -- one prints as it lands; the timeout only bounds how late a signal
  -- (Ctrl-C, SIGTERM) is noticed.
  while true do
    r = eng:get(id)
    if not r then return end -- pruned meanwhile
    local more = assert(eng:events(id, last))
    emit(more)
    if TERMINAL[r.status] and #more == 0 then return end
    if h and h.signal() then return end
    if not TERMINAL[r.status] then
      eng:await_event(id, "*", last, { timeout_ms = 250 })
    end
    if h and h.signal() then return end
  end
end

function run.await(ctx, pos, opts)
  local id = pos[1]
  local eng = ctx.open()
  local o, msg, code = eng:await(id, { timeout_ms = opts.timeout })
  if not o then
    if code == "ETIMEDOUT" then
      if opts.json then say(format.json({ status = "timed_out", timeout_ms = opts.timeout })) end
      failure("await", id .. ": timed out after " .. tostring(opts.timeout) .. " ms")
    end
    unknown_or_fail("await", id, msg, code)
  end
  if opts.json then say(format.json(o)) else say(format.outcome(o)) end
  if o.status ~= "completed" then
    if not opts.json and o.status == "failed" and type(o.error) == "table" and
      o.error.traceback then
      io.stderr:write(tostring(o.error.traceback), "\n")
    end
    return 1
  end
end

function run.signal(ctx, pos, opts)
  local id, name = pos[1], pos[2]
  local payload = json_arg("signal", "payload", pos[3])
  if name == "" then usage_error("signal", "NAME must not be empty") end
  local eng = ctx.open()
  local seq, replayed, code = eng:signal(id, name, payload, { key = opts.key })
  if not seq then unknown_or_fail("signal", id, replayed, code) end
  if opts.json then
    say(format.json({ id = id, type = "signal." .. name, seq = seq, key = opts.key,
      replayed = opts.key and replayed or nil }))
  else
    say(string.format("%s: signal.%s is event %d%s", id, name, seq,
      replayed and " (replayed: that key was sent before)" or ""))
  end
end

-- After an abandon or cancel request: ends the row here and now when no
-- execution of it is live (its owner is gone or its lease lapsed), so an
-- orphan needs no running worker. Returns the report's fields.
local function reconcile(cmd, eng, id)
  local res, holder = eng:reconcile(id)
  if not res then failure(cmd, tostring(holder)) end
  local r = eng:get(id)
  local rep = { result = res, status = r and r.status }
  if res == "ended" then
    local o = eng:await(id, { timeout_ms = 0 })
    if type(o) == "table" then rep.writer, rep.owner = o.writer, o.owner end
  elseif holder then
    rep.holder = holder
  end
  return rep
end

local function request_report(id, seq, rep, opts, what)
  if opts.json then
    rep.id, rep.seq = id, seq
    say(format.json(rep))
    return
  end
  if rep.result == "ended" then
    local by = ""
    if rep.writer then
      by = " (" .. rep.writer .. (rep.owner and ", owner " .. rep.owner or "") .. ")"
    end
    say(string.format("%s: %s requested (event %d); ended %s now%s", id, what, seq,
      tostring(rep.status), by))
  elseif rep.holder then
    local h = rep.holder
    say(string.format("%s: %s requested (event %d); owner %s (incarnation %s) holds it%s: " ..
      "it ends when that owner honours the request or is gone", id, what, seq, h.owner,
      h.incarnation, h.alive and ", alive on this host" or ""))
  elseif rep.result == "held" then
    say(string.format("%s: %s requested (event %d); it runs in this process", id, what, seq))
  else
    say(string.format("%s: %s requested (event %d)", id, what, seq))
  end
end

function run.cancel(ctx, pos, opts)
  local id, reason = pos[1], pos[2]
  local eng = ctx.open()
  if opts.tree then
    local done, msg, code = eng:cancel(id, reason, { tree = true })
    if not done then unknown_or_fail("cancel", id, msg, code) end
    local reps, failed = {}, 0
    for _, d in ipairs(done) do
      if d.seq then
        local rep = reconcile("cancel", eng, d.id)
        rep.id, rep.seq = d.id, d.seq
        reps[#reps + 1] = rep
        if not opts.json then request_report(d.id, d.seq, rep, opts, "cancellation") end
      else
        failed = failed + 1
        reps[#reps + 1] = { id = d.id, error = d.error, code = d.code }
        if not opts.json then
          say(string.format("%s: not cancelled: %s", d.id, tostring(d.error)))
        end
      end
    end
    if opts.json then
      say(format.json(lash.array(reps), { array = true }))
    elseif #done == 0 then
      say(id .. ": nothing to cancel (it and its descendants have ended)")
    end
    if failed > 0 then return 1 end
    return
  end
  local seq, msg, code = eng:cancel(id, reason)
  if not seq then unknown_or_fail("cancel", id, msg, code) end
  request_report(id, seq, reconcile("cancel", eng, id), opts, "cancellation")
end

function run.abandon(ctx, pos, opts)
  local id, reason = pos[1], pos[2]
  local eng = ctx.open()
  local seq, msg, code = eng:abandon(id, reason)
  if not seq and code == "ECONFLICT" then
    -- Requested before (by another command or worker): that request
    -- stands; reconcile it.
    for _, ev in ipairs(eng:events(id, 0) or {}) do
      if ev.type == "process.abandon_requested" then seq = ev.seq end
    end
  end
  if not seq then unknown_or_fail("abandon", id, msg, code) end
  request_report(id, seq, reconcile("abandon", eng, id), opts, "abandonment")
end

function run.prune(ctx, _, opts)
  check_status("prune", opts.status, TERMINAL)
  local eng = ctx.open()
  local rep, msg = eng:prune { before_ms = eng:now() - opts["older-than"], status = opts.status }
  if not rep then failure("prune", msg) end
  if opts.json then
    say(format.json(rep))
  else
    say(string.format("pruned %d processes, %d events", rep.processes, rep.events))
  end
end

-- The rows of `stats`: a count per status, then the totals.
local STAT_ORDER = {}
for _, k in ipairs(STATUSES) do STAT_ORDER[#STAT_ORDER + 1] = k end
for _, k in ipairs { "live", "suspended", "total", "tombstones", "change_seq", "bytes_used",
  "bytes_available", "bytes_data", "bytes_per_row" } do
  STAT_ORDER[#STAT_ORDER + 1] = k
end

function run.stats(ctx, _, opts)
  local s = read_store(ctx, "stats", "stats")
  -- The pages holding data (not the free ones) per row, tombstones not counted.
  if (s.bytes_data or 0) > 0 and (s.total or 0) > 0 then
    s.bytes_per_row = s.bytes_data // s.total
  end
  if opts.json then
    say(format.json(s))
    return
  end
  local rows = {}
  for _, k in ipairs(STAT_ORDER) do
    if s[k] ~= nil then rows[#rows + 1] = { k, tostring(s[k]) } end
  end
  say(format.columns({ "STAT", "VALUE" }, rows))
end

-- An address of --listen / --metrics, checked before the store opens (the
-- server checks it again: a numeric IPv4 host, [IPv6] or localhost).
local function check_addr(cmd, flag, v)
  local name, port = v:match("^%[([%x:%.]+)%]:(%d+)$")
  if not name then name, port = v:match("^([%w%.%-]+):(%d+)$") end
  if not name or tonumber(port) > 65535 then
    usage_error(cmd, flag .. ' "' .. v .. '": give HOST:PORT, e.g. 127.0.0.1:8080 ' ..
      "([::1]:8080 for IPv6, port 0 for a free one)")
  end
end

function run.metrics(ctx)
  local text = read_store(ctx, "metrics", "metrics")
  out:write(text)
end

function run.ui(ctx, _, opts)
  local h = host()
  if not h then failure("ui", "signals need the lash executable") end
  check_addr("ui", "--listen", opts.listen or "127.0.0.1:8080")
  -- It waits for no other process: the change feed need not wake it at
  -- every commit of a worker (it reads the store when a page asks).
  local eng = ctx.open(false, { fs_wake = false, poll_min_ms = 1000, poll_max_ms = 5000 })
  local srv, msg = require("lash.ui").serve(eng, opts.listen or "127.0.0.1:8080", {
    say = function(line) say(line); out:flush() end })
  if not srv then failure("ui", tostring(msg)) end
  h.watch(eng)
  h.trap("INT", "TERM")
  local ok, ran, rmsg = pcall(eng.run, eng)
  srv:close()
  if not ok then failure("ui", tostring(ran)) end
  if not ran then failure("ui", tostring(rmsg)) end
  io.stderr:write("lash: ui: stopped\n")
  return 0
end

local function salvage(ctx, dest, json)
  local there = lash.open(dest, { read_only = true })
  if there then
    there:close()
    failure("check", "--salvage " .. dest .. ": a store is there already; give a new directory")
  end
  local rep, msg, code, partial = lash.salvage(ctx.db, dest,
    { max_readers = ctx.store.max_readers })
  rep = rep or partial
  if not rep then failure("check", tostring(msg)) end
  if json then
    say(format.json({ ok = msg == nil, copied = rep.copied, skipped = rep.skipped,
      problems = lash.array(rep.lines), error = msg, code = code }))
  else
    for _, l in ipairs(rep.lines) do say(l) end
    if msg then say(msg) end
    say(string.format("salvage: %d rows copied to %s, %d skipped", rep.copied, dest, rep.skipped))
  end
  if msg or rep.skipped > 0 then return 1 end
end

function run.check(ctx, _, opts)
  if opts.salvage then return salvage(ctx, opts.salvage, opts.json) end
  -- The walk runs in a child process: this one never maps a damaged file.
  local problems, msg, code = lash.check(ctx.db, { max_readers = ctx.store.max_readers })
  if not problems and code == "EACCES" then
    failure("check", "no store at " .. ctx.db .. " (" .. tostring(msg) .. ")")
  end
  if not problems then failure("check", tostring(msg)) end
  if opts.json then
    say(format.json({ ok = #problems == 0, problems = lash.array(problems) }))
  elseif #problems == 0 then
    say("ok: no problems found in " .. ctx.db)
  else
    for _, p in ipairs(problems) do say(p) end
    say(string.format("%d problem%s found", #problems, #problems == 1 and "" or "s"))
  end
  if #problems > 0 then return 1 end
end

-- lash check of one store, for migrate: its problem lines, or nil, msg.
local function check_lines(target)
  local problems, msg = lash.check(target)
  if not problems then return nil, tostring(msg) end
  return problems
end

function run.migrate(_, _, opts)
  local from, to = opts.from, opts.to
  if from == "" or to == "" then failure("migrate", "--from and --to must not be empty") end
  if from == to then failure("migrate", "--from and --to name the same store " .. from) end
  local rep, msg, code, partial = lash.migrate(from, to)
  rep = rep or partial
  local checks, bad = {}, msg ~= nil
  if not msg then
    for _, t in ipairs { { "from", from }, { "to", to } } do
      local lines, cmsg = check_lines(t[2])
      if not lines then lines = { cmsg } end
      if #lines > 0 then bad = true end
      checks[t[1]] = lines
    end
  end
  if opts.json then
    say(format.json({ ok = not bad, from = from, to = to, error = msg, code = code,
      processes = rep.processes, statuses = rep.statuses, events = rep.events,
      tombstones = rep.tombstones, leases_released = rep.leases_released,
      suspended = rep.suspended, change_seq = rep.change_seq, side_table = rep.side,
      check = { from = lash.array(checks.from or {}), to = lash.array(checks.to or {}) } }))
    return bad and 1 or nil
  end
  if msg then failure("migrate", tostring(msg)) end
  say(string.format("migrated %s -> %s", from, to))
  local rows = {}
  for _, st in ipairs(STATUSES) do rows[#rows + 1] = { st, tostring(rep.statuses[st] or 0) } end
  rows[#rows + 1] = { "processes", tostring(rep.processes) }
  rows[#rows + 1] = { "suspended", tostring(rep.suspended) }
  rows[#rows + 1] = { "events", tostring(rep.events) }
  rows[#rows + 1] = { "tombstones", tostring(rep.tombstones) }
  rows[#rows + 1] = { "leases_released", tostring(rep.leases_released) }
  rows[#rows + 1] = { "change_seq", tostring(rep.change_seq) }
  rows[#rows + 1] = { "side_table", tostring(rep.side) }
  say(format.columns({ "COPIED", "COUNT" }, rows))
  for _, t in ipairs { { "from", from }, { "to", to } } do
    local lines = checks[t[1]]
    if #lines == 0 then
      say("check " .. t[2] .. ": ok")
    else
      for _, l in ipairs(lines) do say("check " .. t[2] .. ": " .. l) end
    end
  end
  if bad then return 1 end
end

local function traceback(msg)
  if type(msg) ~= "string" then msg = tostring(msg) end
  return debug.traceback(msg, 2)
end

function run.run(ctx, pos)
  local file = pos[1]
  local chunk, err = loadfile(file ~= "-" and file or nil, "t")
  if not chunk then failure("run", err) end
  local eng = ctx.open(true)
  local script_arg = { [0] = file }
  for i = 2, #pos do script_arg[i - 1] = pos[i] end
  _G.lash, _G.eng, _G.arg = lash, eng, script_arg
  local res = table.pack(xpcall(chunk, traceback, table.unpack(script_arg)))
  if not res[1] then failure("run", tostring(res[2])) end
  if is_open(eng) then
    local ok, rerr = pcall(eng.run, eng, { until_idle = true })
    if not ok then failure("run", tostring(rerr)) end
  end
  if math.type(res[2]) == "integer" then return res[2] end
end

-- What to do about a storage error that stopped a worker.
local REMEDY = {
  EFULL = "restart the worker with a larger --map-size (or none: the map then grows)",
  ECORRUPT = "run `lash check`; `lash check --salvage DIR` copies the readable rows",
  EIO = "check the disk and its free space, then restart the worker",
  EPANIC = "check the disk, then restart the worker",
  ENOMEM = "free memory (or lower --concurrency), then restart the worker",
}

-- The engine met a storage error and cannot go on: one line naming the
-- store, the error and the remedy; leases released; exit 1.
local function storage_failure(eng, msg, code, wlog)
  local path = eng:path()
  pcall(eng.drain, eng)
  close_store(eng)
  wlog { type = "storage", store = path, msg = msg, code = code,
    todo = REMEDY[code] or "restart the worker" }
  return 1
end

local function busy(eng)
  local s = eng:stats()
  return s and (s.bodies_running or 0) + (s.bodies_parked or 0) or 0
end

function run.worker(ctx, _, opts)
  local h = host()
  if not h then failure("worker", "signals need the lash executable") end
  local loads = opts.load or {}
  if #loads == 0 then usage_error("worker", "nothing to run: give --load FILE|DIR") end
  if opts.concurrency == 0 then usage_error("worker", "--concurrency must be >= 1") end
  for _, p in ipairs(loads) do
    if not exists(p) then usage_error("worker", "--load " .. p .. ": no such file or directory") end
  end
  if opts.metrics then check_addr("worker", "--metrics", opts.metrics) end
  local lf = opts["log-format"] or "human"
  if lf ~= "human" and lf ~= "json" then
    usage_error("worker", '--log-format takes human or json, got "' .. lf .. '"')
  end
  if opts.quiet and opts.verbose then
    usage_error("worker", "--quiet and --verbose exclude each other: give one")
  end
  local eng = ctx.open(true, { concurrency = opts.concurrency, owner = opts.owner })
  for _, p in ipairs(loads) do
    local ok, msg = eng:load(p)
    if not ok then failure("worker", "cannot load " .. p .. ": " .. tostring(msg)) end
  end
  local last_ms = 0
  local logger = require("lash.log").new {
    format = lf, level = opts.quiet and "quiet" or opts.verbose and "verbose" or "normal",
    now = function()
      -- (after the close: the wall clock, never before the last line)
      last_ms = is_open(eng) and eng:now() or math.max(last_ms, os.time() * 1000)
      return last_ms
    end,
    json = format.json,
  }
  -- The worker's own lines (start, stop) at info level, through the logger.
  local function wlog(fmt, ...)
    return logger { type = "worker", msg = "worker: " .. string.format(fmt, ...) }
  end
  -- A failed attempt that the store answered with a retry (the observation
  -- carries its time) is logged as a retry, with when it runs.
  eng:on_log(function(ob)
    if ob.type == "finished" and ob.retry_at then
      ob = { type = "retry", id = ob.id, kind = ob.kind, attempt = ob.attempt,
        outcome = ob.outcome, retry_at = ob.retry_at }
    end
    return logger(ob)
  end, { summary_ms = 60000 })
  local msrv
  if opts.metrics then
    local msg
    msrv, msg = require("lash.metrics").serve(eng, opts.metrics)
    if not msrv then failure("worker", "--metrics: " .. tostring(msg)) end
    wlog("metrics on http://%s/metrics", msrv:address())
  end
  h.watch(eng)
  h.trap("INT", "TERM")
  local grace = opts.grace or 10000
  -- A body that never yields cannot let the loop answer: then the core
  -- releases the leases and exits once the grace period is over.
  h.emergency(grace)
  wlog("%s on %s: %s, concurrency %d", (eng:owner()), eng:path(),
    table.concat(loads, ", "), opts.concurrency or 64)
  if not eng:stats().owner_held then
    logger { type = "worker", level = "warn", msg = string.format(
      "worker: no owner lock held on %s (a read-only store folder, or a backend " ..
      "without one): if this worker dies, peers take its rows over only after the " ..
      "lease TTL", eng:path()) }
  end
  local ok, ran, msg, code = pcall(eng.run, eng)
  if not ok then failure("worker", tostring(ran)) end
  if not ran then return storage_failure(eng, msg, code, logger) end
  local sig = h.signal() or "stop"
  eng:pause(true)
  local n = busy(eng)
  wlog("SIG%s: admission stopped, %d bodies running, grace %s", sig, n,
    format.age(grace))
  local deadline = eng:now() + grace
  while busy(eng) > 0 do
    local left = deadline - eng:now()
    if left <= 0 or h.signal() then break end
    eng:sleep(math.min(25, left))
  end
  n = busy(eng)
  if msrv then msrv:close() end
  local drained = eng:drain() or 0
  h.emergency(false)
  close_store(eng)
  ctx.eng = nil
  if n > 0 then
    wlog("stopped; %d bodies cut off (%d owner_bound abandoned), leases released", n,
      drained)
  else
    wlog("stopped; all bodies finished, leases released")
  end
  return 0
end

function run.repl(ctx)
  local eng = ctx.open(true)
  return require("lash.repl").run(eng, { host = host() })
end

function run.help(_, pos)
  local name = pos[1]
  if name == nil then
    say(general_usage())
  elseif COMMANDS[name] then
    say(command_help(name))
  else
    usage_error(nil, 'unknown command "' .. name .. '"')
  end
end

-- ----------------------------------------------------------------- main

local function report(e)
  local where = e.cmd and ("lash " .. e.cmd) or "lash"
  io.stderr:write(where, ": ", e.msg, "\n")
  if e.usage then
    if e.cmd and COMMANDS[e.cmd] then
      io.stderr:write("usage: ", usage_line(e.cmd), "\n")
      io.stderr:write("(lash ", e.cmd, " --help for more)\n")
    else
      io.stderr:write("usage: lash [--db DIR] [COMMAND] [ARGS] [--help]\n")
      io.stderr:write("(lash --help lists the commands)\n")
    end
  end
  return e.code
end

local function main(args)
  local i, db, n = 1, nil, #args
  local store = {}
  -- global options
  while i <= n do
    local a = args[i]
    if a == "--version" or a == "-V" then
      say("lash " .. lash.version .. " (" .. _VERSION .. ")")
      return 0
    elseif a == "--help" or a == "-h" then
      say(general_usage())
      return 0
    elseif a == "--db" then
      db = args[i + 1]
      if db == nil then usage_error(nil, "--db needs a directory") end
      i = i + 2
    elseif a:match("^%-%-db=") then
      db = a:sub(6)
      i = i + 1
    elseif a == "--read-only" then
      store.read_only = true
      i = i + 1
    elseif STORE_FLAGS[a:match("^%-%-([%w-]+)") or ""] then
      local key, val = a:match("^%-%-([^=]+)=(.*)$")
      if key then
        i = i + 1
      else
        key, val = a:sub(3), args[i + 1]
        i = i + 2
      end
      store_flag(nil, store, key, val)
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage_error(nil, 'unknown option "' .. a .. '"')
    else
      break
    end
  end
  local name = args[i]
  if name == nil then
    name = "repl"
  elseif not COMMANDS[name] then
    usage_error(nil, 'unknown command "' .. name .. '"')
  else
    i = i + 1
  end
  local pos, opts = parse(name, args, i, store)
  if opts.help then
    say(command_help(name))
    return 0
  end
  db = opts.db or db or os.getenv("LASH_DB") or "./lash.db"
  if db == "" then usage_error(name, "--db must not be empty") end
  local ctx = {}
  ctx.db, ctx.store = db, store
  function ctx.open(creates, eopts)
    local o = {}
    for k, v in pairs(store) do o[k] = v end
    for k, v in pairs(eopts or {}) do o[k] = v end
    ctx.eng = open_store(name, db, creates, o)
    return ctx.eng
  end
  local ok, code = pcall(run[name], ctx, pos, opts)
  if ctx.eng and is_open(ctx.eng) then close_store(ctx.eng) end
  if not ok then error(code, 0) end
  return code or 0
end

--- Runs the command line `args` (arg[1..n]); returns the exit code.
function M.main(args)
  local ok, res = xpcall(main, function(e)
    if getmetatable(e) == Exit then return e end
    return traceback(e)
  end, args)
  out:flush()
  if ok then return res end
  if getmetatable(res) == Exit then return report(res) end
  io.stderr:write("lash: ", tostring(res), "\n")
  return 1
end

M.commands = COMMANDS
M.usage_line = usage_line

return M

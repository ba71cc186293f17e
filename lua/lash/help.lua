--- lash.help: the REPL's `help` and `help(fn)`: one line per call, the long
--- form being docs/lua-api.md (a spec checks that both cover every call).
local M = {}

-- name -> "signature -- what it does"
M.entries = {
  ["lash.open"] = "lash.open(target, opts) -> eng -- open (creating) a store",
  ["lash.check"] = "lash.check(dir, {max_readers}) -> problems -- audit in a child process",
  ["lash.migrate"] = "lash.migrate(from, to) -> report -- copy a store into an empty one " ..
    "(any backend)",
  ["lash.salvage"] = "lash.salvage(dir, dest) -> {copied, skipped, lines} -- copy readable rows",
  ["lash.array"] = "lash.array(t) -> t -- mark a table as an array ([] when empty)",
  ["lash.encode"] = "lash.encode(v) -> string -- a value as MessagePack",
  ["lash.decode"] = "lash.decode(s) -> v -- a MessagePack string as a value",
  ["lash.set_of"] = "lash.set_of(list) -> {name = true}, e.g. lash.set_of(lash.TERMINAL)",
  ["eng:define"] = "eng:define(kind, fn(ctx, input), {disposition, max_attempts, timeout_ms, " ..
    "retry = {max_attempts, initial_ms, factor, max_ms, jitter}, " ..
    "priority, concurrency_key, concurrency_limit, rate = {n, per_ms}})",
  ["eng:load"] = "eng:load(path) -- define the kinds of a file or directory",
  ["eng:start"] = "eng:start(kind, input, {id, disposition, max_attempts, timeout_ms, retry, " ..
    "delay_ms, run_at, unique_key, unique_for_ms, priority, concurrency_key, " ..
    "concurrency_limit}) -> id",
  ["eng:register"] = "eng:register(kind, input, opts) -> id, created -- eng:start, saying " ..
    "whether this call wrote the row",
  ["eng:retry"] = "eng:retry(id) -> seq -- run a failed row again as a new attempt",
  ["lash.fatal"] = "lash.fatal(msg) -- raise an error that is not retried",
  ["eng:signal"] = "eng:signal(id, name, payload) -> seq, replayed -- append signal.<name>; " ..
    "a 4th argument {key} gives it a replay key",
  ["eng:append"] = "eng:append(id, type, payload) -> seq, replayed -- append a user event; " ..
    "{key} as for eng:signal",
  ["eng:cancel"] = "eng:cancel(id, reason, {tree}) -> seq -- request cancellation " ..
    "({tree = true}: of its live descendants too, -> {{id, seq}, ...})",
  ["eng:abandon"] = "eng:abandon(id, why) -> seq -- request abandonment",
  ["eng:complete"] = "eng:complete(id, outcome, {authority}) -- end a row without its lease",
  ["eng:batch"] = "eng:batch(fn) -- every write of fn(eng) in one atomic commit",
  ["eng:prune"] = "eng:prune{before_ms, status} -> {processes, events}",
  ["eng:schedule"] = "eng:schedule(name, spec, kind, input, {tz, catch_up}) -> true, how " ..
    "-- a durable cron schedule: one child name@<tick> per tick",
  ["eng:unschedule"] = "eng:unschedule(name) -> true -- remove a schedule",
  ["eng:schedules"] = "eng:schedules() -> {{name, spec, kind, tz, ticks, ...}, ...}",
  ["lash.cron_ticks"] = "lash.cron_ticks(spec, {tz, after, n}) -> {ms, ...} -- next ticks",
  ["eng:get"] = "eng:get(id) -> record",
  ["eng:events"] = "eng:events(id, after, limit) -> {{seq, type, payload, at, key}, ...}",
  ["eng:list"] = "eng:list{status, kind, limit, after} -> {record, ...}",
  ["eng:kinds"] = "eng:kinds() -> {{kind, version, options, workers, waiting}, ...} -- " ..
    "stored definitions, live workers defining them, rows waiting for one",
  ["eng:workers"] = "eng:workers() -> {{owner, incarnation, pid, host, kinds, started_at, " ..
    "heartbeat_at, alive}, ...}",
  ["eng:stats"] = "eng:stats() -> counts per status, bytes, change_seq",
  ["eng:metrics"] = "eng:metrics() -> Prometheus text: counts per kind/status, histograms, backlog",
  ["eng:check"] = "eng:check() -> {problem, ...} -- audit the store",
  ["eng:now"] = "eng:now() -> ms -- the store's clock",
  ["eng:owner"] = "eng:owner() -> owner, incarnation",
  ["eng:path"] = "eng:path() -> the store's target",
  ["eng:idle"] = "eng:idle() -> boolean -- nothing left to do here",
  ["eng:await"] = "eng:await(id, {timeout_ms}) -> outcome",
  ["eng:await_event"] = "eng:await_event(id, type, after, {timeout_ms}) -> event",
  ["eng:sleep"] = "eng:sleep(ms)",
  ["eng:drive"] = "eng:drive() -> {admitted, deferred, taken_over} -- one admission pass",
  ["eng:reconcile"] = "eng:reconcile(id) -> 'ended' | 'held', holder | 'nothing'" ..
    " -- honour an orphan's abandon/cancel request now",
  ["eng:run"] = "eng:run{until_idle | once | nowait} -- run the loop (default: until eng:stop())",
  ["eng:run_once"] = "eng:run_once() -- one loop turn",
  ["eng:stop"] = "eng:stop() -- make eng:run() return",
  ["eng:spawn"] = "eng:spawn(fn) -- run fn as an engine coroutine",
  ["eng:on_event"] = "eng:on_event(fn(event)) -- see every event after its commit",
  ["eng:pause"] = "eng:pause(on) -- stop (or resume) admitting rows",
  ["eng:interrupt"] = "eng:interrupt() -- end the wait in progress from plain code",
  ["eng:drain"] = "eng:drain() -> n -- abandon this owner's unfinished owner_bound rows",
  ["eng:close"] = "eng:close() -- release leases and close the store",
  ["eng:on_log"] = "eng:on_log(fn(observation), {summary_ms}) -- a body's end, a lost lease, " ..
    "a takeover, suspensions (worker logs; lash.log formats)",
  ["eng:lease"] = "eng:lease(id) -> {owner, incarnation, fence, expires_at, alive} | nil",
  ["eng:children"] = "eng:children(id) -> {record, ...} -- the processes it started",
  ["eng:tree"] = "eng:tree(id) -> {record, children = {tree, ...}} -- it and its descendants",
  ["ctx:emit"] = "ctx:emit(type, payload) -> seq -- a fenced event (journaled)",
  ["ctx:step"] = "ctx:step(name, fn, {retry}) -> value -- fn runs once; a re-run gets its value",
  ["ctx:now"] = "ctx:now() -> ms -- journaled",
  ["ctx:random"] = "ctx:random(m, n) -> number -- math.random, journaled",
  ["ctx:uuid"] = "ctx:uuid() -> string -- a v4 UUID, journaled",
  ["ctx:await_signal"] = "ctx:await_signal(name, {timeout_ms}) -> payload",
  ["ctx:await_event"] = "ctx:await_event([id,] type, after, {timeout_ms}) -> event",
  ["ctx:sleep"] = "ctx:sleep(ms)",
  ["ctx:exec"] = "ctx:exec(argv, {timeout_ms, max_output, env, cwd}) -> {status, signal, stdout," ..
    " stderr} -- a command, without blocking the loop",
  ["ctx:start"] = "ctx:start(kind, input, opts) -> id -- a child, id <this id>/<n>",
  ["ctx:await"] = "ctx:await(id, {timeout_ms}) -> outcome -- wait for another process",
  ["ctx:cancelled"] = "ctx:cancelled() -> boolean",
}

local INTRO = [[
lash: `eng` is the open store, `lash` the module. help(eng.start) or
help("start") shows one call; docs/lua-api.md has them all in full.
Ctrl-C interrupts a running chunk, Ctrl-D exits.]]

-- The names of `fn`: looks it up by identity in the given method tables.
local function name_of(fn, tables)
  for prefix, t in pairs(tables) do
    for k, v in pairs(t) do
      if rawequal(v, fn) then return prefix .. k end
    end
  end
end

--- Text for `what`: nil -> the overview; a function or a name ("start",
--- "eng:start", "ctx:sleep") -> its line(s).
function M.text(what, tables)
  if what == nil then
    local groups = { ["lash."] = {}, ["eng:"] = {}, ["ctx:"] = {} }
    for name in pairs(M.entries) do
      local prefix, rest = name:match("^(%a+[%.:])(.*)$")
      local g = groups[prefix]
      if g then g[#g + 1] = rest end
    end
    local out = { INTRO, "" }
    for _, p in ipairs({ "lash.", "eng:", "ctx:" }) do
      table.sort(groups[p])
      -- lines of at most 80 columns, each with its prefix (terminals wrap)
      local line = p
      for _, n in ipairs(groups[p]) do
        if #line + 1 + #n > 80 then
          out[#out + 1] = line
          line = p
        end
        line = line .. " " .. n
      end
      out[#out + 1] = line
    end
    return table.concat(out, "\n")
  end
  local name = what
  if type(what) == "function" then
    name = name_of(what, tables or {})
    if not name then return "no help for this function (help() lists the calls)" end
  elseif type(what) ~= "string" then
    return "help(fn) or help(\"name\"); help() lists the calls"
  end
  if M.entries[name] then return M.entries[name] end
  local found = {}
  for _, p in ipairs({ "lash.", "eng:", "ctx:" }) do
    if M.entries[p .. name] then found[#found + 1] = M.entries[p .. name] end
  end
  if #found > 0 then return table.concat(found, "\n") end
  return 'no call named "' .. name .. '" (help() lists the calls)'
end

return M

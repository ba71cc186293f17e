--- lash.metrics: the store and the engine in Prometheus text exposition
--- (version 0.0.4): `lash metrics`, `lash worker --metrics ADDR`,
--- eng:metrics().
--
-- One walk of the rows (core.summarize: counts, the oldest pending row and
-- duration histograms per kind) plus eng:stats() (the store's counters and
-- this engine's own). Rows are gauges (prune lowers them); the engine's
-- counters (commits, drives, take-overs, ...) are counters of this
-- process, so a short-lived `lash metrics` shows them as 0.
local core = require "lash.core"

local M = {}

M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

local STATUSES = core.STATUSES
local BOUNDS = core.SUMMARY_BOUNDS -- ms

local function esc(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function num(v)
  if v == math.huge then return "+Inf" end
  if math.type(v) == "integer" then return tostring(v) end
  return string.format("%.17g", v)
end

-- A writer of families: head(name, type, help), then sample(name, labels, v).
local function writer()
  local out = {}
  local w = {}
  function w.head(name, typ, help)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " " .. typ
  end
  function w.sample(name, labels, v)
    local l = ""
    if labels and #labels > 0 then
      local parts = {}
      for i = 1, #labels, 2 do
        parts[#parts + 1] = labels[i] .. '="' .. esc(labels[i + 1]) .. '"'
      end
      l = "{" .. table.concat(parts, ",") .. "}"
    end
    out[#out + 1] = name .. l .. " " .. num(v)
  end
  function w.text()
    out[#out + 1] = ""
    return table.concat(out, "\n")
  end
  return w
end

local function histogram(w, name, help, kinds, field)
  w.head(name, "histogram", help)
  for _, k in ipairs(kinds) do
    local h = k[field]
    local cum = 0
    for i, b in ipairs(BOUNDS) do
      cum = cum + h.buckets[i]
      w.sample(name .. "_bucket", { "kind", k.kind, "le", num(b / 1000) }, cum)
    end
    w.sample(name .. "_bucket", { "kind", k.kind, "le", "+Inf" }, h.count)
    w.sample(name .. "_sum", { "kind", k.kind }, h.sum_ms / 1000)
    w.sample(name .. "_count", { "kind", k.kind }, h.count)
  end
end

--- What metrics and the UI show, read once: {stats = eng:stats(), kinds =
--- core.summarize(eng), now = ms, backlog = N, oldest_pending_at = ms | nil}
--- | nil, msg, code.
function M.snapshot(eng)
  local stats, msg, code = eng:stats()
  if not stats then return nil, msg, code end
  local kinds
  kinds, msg, code = core.summarize(eng)
  if not kinds then return nil, msg, code end
  local oldest
  for _, k in ipairs(kinds) do
    local at = k.oldest_pending_at
    if at > 0 and (oldest == nil or at < oldest) then oldest = at end
  end
  return { stats = stats, kinds = kinds, now = eng:now(), backlog = stats.pending,
    oldest_pending_at = oldest }
end

-- The engine's own counters: {stats field, metric, help}.
local ENGINE_COUNTERS = {
  { "commits", "lash_engine_commits_total", "Shared write transactions this engine committed." },
  { "drives", "lash_engine_drives_total", "Drive passes of this engine." },
  { "taken_over", "lash_engine_taken_over_total",
    "Rows this engine took over from owners that are gone." },
  { "owners_gone", "lash_engine_owners_gone_total", "Gone owners this engine noticed." },
  { "suspended_here", "lash_engine_suspensions_total", "Runs this engine suspended." },
  { "timers_fired", "lash_engine_timers_fired_total", "Suspended rows this engine's timer woke." },
  { "feed_changes", "lash_engine_feed_changes_total",
    "Changes by other OS processes this engine saw." },
}
local ENGINE_GAUGES = {
  { "bodies_running", "lash_engine_bodies_running", "Bodies holding a slot now." },
  { "bodies_parked", "lash_engine_bodies_parked", "Bodies parked in a wait now." },
  { "waits", "lash_engine_waits", "Parked waits now (bodies and host)." },
}

--- Prometheus text of a snapshot (M.snapshot).
function M.render(snap)
  local w = writer()
  local s, kinds = snap.stats, snap.kinds
  w.head("lash_processes", "gauge", "Processes in the store by kind and status.")
  for _, k in ipairs(kinds) do
    for _, st in ipairs(STATUSES) do
      w.sample("lash_processes", { "kind", k.kind, "status", st }, k[st])
    end
  end
  w.head("lash_store_processes", "gauge", "Processes in the store by status (its counters).")
  for _, st in ipairs(STATUSES) do w.sample("lash_store_processes", { "status", st }, s[st]) end
  w.head("lash_backlog", "gauge", "Pending processes: registered, not started yet.")
  w.sample("lash_backlog", nil, snap.backlog)
  w.head("lash_backlog_oldest_age_seconds", "gauge",
    "Age of the oldest pending process (0 when none).")
  w.sample("lash_backlog_oldest_age_seconds", nil,
    snap.oldest_pending_at and math.max(0, snap.now - snap.oldest_pending_at) / 1000 or 0)
  w.head("lash_kind_backlog_oldest_age_seconds", "gauge",
    "Age of the oldest pending process of each kind that has one.")
  for _, k in ipairs(kinds) do
    if k.oldest_pending_at > 0 then
      w.sample("lash_kind_backlog_oldest_age_seconds", { "kind", k.kind },
        math.max(0, snap.now - k.oldest_pending_at) / 1000)
    end
  end
  w.head("lash_attempts", "gauge", "Attempts started, summed over the rows of each kind.")
  for _, k in ipairs(kinds) do w.sample("lash_attempts", { "kind", k.kind }, k.attempts) end
  histogram(w, "lash_process_duration_seconds",
    "Ended processes: registration to their last event.", kinds, "duration")
  histogram(w, "lash_attempt_duration_seconds",
    "Ended processes: their last attempt's start to their end.", kinds, "attempt")
  w.head("lash_suspended", "gauge", "Waiting processes that are suspended (no body in memory).")
  w.sample("lash_suspended", nil, s.suspended)
  w.head("lash_tombstones", "gauge", "Tombstones of pruned processes.")
  w.sample("lash_tombstones", nil, s.tombstones)
  w.head("lash_changes_total", "counter", "The store-wide change sequence.")
  w.sample("lash_changes_total", nil, s.change_seq)
  w.head("lash_store_bytes_used", "gauge", "Bytes the store occupies.")
  w.sample("lash_store_bytes_used", nil, s.bytes_used)
  w.head("lash_store_bytes_available", "gauge", "Bytes the store may still grow by.")
  w.sample("lash_store_bytes_available", nil, s.bytes_available)
  w.head("lash_longest_write_seconds", "gauge",
    "The longest write transaction of this process, begin to durable commit (fsync included).")
  w.sample("lash_longest_write_seconds", nil, s.longest_write_us / 1e6)
  for _, c in ipairs(ENGINE_COUNTERS) do
    w.head(c[2], "counter", c[3])
    w.sample(c[2], nil, s[c[1]] or 0)
  end
  for _, g in ipairs(ENGINE_GAUGES) do
    w.head(g[2], "gauge", g[3])
    w.sample(g[2], nil, s[g[1]] or 0)
  end
  w.head("lash_engine_owner_held", "gauge", "1 when this engine holds its owner lock.")
  w.sample("lash_engine_owner_held", nil, s.owner_held and 1 or 0)
  w.head("lash_info", "gauge", "The lash version.")
  w.sample("lash_info", { "version", core.version }, 1)
  return w.text()
end

--- eng:metrics() -> text | nil, msg, code
function M.text(eng)
  local snap, msg, code = M.snapshot(eng)
  if not snap then return nil, msg, code end
  return M.render(snap)
end

--- Serves GET /metrics on the engine's loop at addr: server | nil, msg,
--- code.
function M.serve(eng, addr)
  return core.http_listen(eng, addr, function(req, reply)
    if req.path ~= "/metrics" then
      return core.http_respond(reply, 404, "text/plain", "not found: try /metrics\n")
    end
    if req.method ~= "GET" and req.method ~= "HEAD" then
      return core.http_respond(reply, 405, "text/plain", "GET /metrics\n", { "Allow: GET, HEAD" })
    end
    local text, msg = M.text(eng)
    if not text then return core.http_respond(reply, 500, "text/plain", tostring(msg) .. "\n") end
    core.http_respond(reply, 200, M.CONTENT_TYPE, text)
  end)
end

return M

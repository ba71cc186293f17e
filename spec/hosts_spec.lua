-- spec/hosts_spec.lua - several "hosts" drain one store while one dies and
-- another is cut off for longer than the lease TTL (issue 12, item 3).
--
-- On PostgreSQL, run as root with iproute2, each host is a worker OS
-- process (spec/workers/drain.lua) in a network namespace of its own
-- (`ip netns`, a veth pair to the root namespace) and a mount namespace of
-- its own with a private /tmp (`unshare -m`): it shares no files with the
-- others and reaches the database only over TCP, at the address scripts/pg
-- makes the server listen on for them ($LASH_PG_NETNS_ADDR, 10.231.255.1,
-- on the root namespace's loopback). One host is killed with SIGKILL;
-- another loses its network (its veth is set down) for three lease TTLs
-- with bodies in flight, then gets it back: its stale writes must be
-- refused by the fence (the event log shows no write of its attempts after
-- another host's, its output shows the bodies it never finished).
--
-- Where namespaces cannot be made (LMDB, not root, no `ip`, a server that
-- does not listen there) the spec says so and runs the hosts as plain
-- processes: on PostgreSQL over TCP on loopback, on LMDB sharing a
-- directory; a host then "loses its network" by being stopped (SIGSTOP),
-- which neither renews its leases nor writes, exactly as behind a
-- partition, and comes back with SIGCONT.
local h = require "spec.helpers"

local TOTAL = 5000
local TTL = 1000

local function sh(cmd)
  local ok = os.execute("{ " .. cmd .. "; } >/dev/null 2>&1")
  return ok == true
end

local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

-- The network namespaces of the hosts, or nil and why they cannot be made.
-- The checkout this spec runs from (busted runs from its root).
local ROOT = (io.popen("pwd"):read("l"))

local function namespaces(target, n)
  if not h.pg then return nil, "LMDB: the hosts share a directory" end
  if capture("id -u"):match("^%s*(%d+)") ~= "0" then return nil, "not root" end
  if not sh("command -v ip && command -v unshare") then return nil, "no ip or unshare" end
  local port = target:match("^postgresql://[^/]-:(%d+)/")
  if not port then return nil, "the target " .. target .. " names no port" end
  local addr = os.getenv("LASH_PG_NETNS_ADDR") or "10.231.255.1"
  if not sh("bash -c " .. h.q("exec 3<>/dev/tcp/" .. addr .. "/" .. port)) then
    return nil, "the server does not listen on " .. addr .. ":" .. port ..
      " (scripts/pg start makes it, as root)"
  end
  local tag = tostring(math.random(1000, 9999))
  local net = math.random(1, 250)
  local ns = { addr = addr, port = port, hosts = {} }
  function ns.teardown()
    for _, x in ipairs(ns.hosts) do sh("ip netns del " .. x.name) end
    ns.hosts = {}
  end
  for w = 1, n do
    local x = {
      name = "lash-" .. tag .. "-" .. w,
      veth = "lv" .. tag .. w,
      peer = "lp" .. tag .. w,
      root_ip = string.format("10.231.%d.%d", net, 4 * w + 1),
      ns_ip = string.format("10.231.%d.%d", net, 4 * w + 2),
    }
    local cmds = {
      "ip netns add " .. x.name,
      string.format("ip link add %s type veth peer name %s netns %s", x.veth, x.peer, x.name),
      string.format("ip addr add %s/30 dev %s", x.root_ip, x.veth),
      "ip link set " .. x.veth .. " up",
      string.format("ip -n %s addr add %s/30 dev %s", x.name, x.ns_ip, x.peer),
      string.format("ip -n %s link set %s up", x.name, x.peer),
      string.format("ip -n %s link set lo up", x.name),
      string.format("ip -n %s route add default via %s", x.name, x.root_ip),
    }
    ns.hosts[w] = x
    for _, c in ipairs(cmds) do
      if not sh(c) then
        ns.teardown()
        return nil, "`" .. c .. "` failed"
      end
    end
    -- what a host runs under: its network namespace, then a mount
    -- namespace with a /tmp of its own
    -- namespace with a /tmp of its own. A checkout that lives under /tmp
    -- (a CI clone) is bound back into it, so the host still finds lash
    -- and its worker script, and nothing else of the root's /tmp.
    x.wrap = string.format("ip netns exec %s unshare -m --propagation private sh -c %s sh",
      x.name, h.q('R=' .. h.q(ROOT) .. '; case "$R" in /tmp/*) ' ..
        'mount --bind "$R" /mnt && mount -t tmpfs tmpfs /tmp && mkdir -p "$R" && ' ..
        'mount --bind /mnt "$R" && umount /mnt ;; *) mount -t tmpfs tmpfs /tmp ;; esac && ' ..
        'exec "$@"'))
  end
  return ns
end

-- The target as a host in a namespace reaches it.
local function via(ns, target)
  return (target:gsub("@127%.0%.0%.1:", "@" .. ns.addr .. ":", 1))
end

describe("many hosts", function()
  local ns
  after_each(function()
    h.cleanup()
    if ns then ns.teardown() end
    ns = nil
  end)

  it("3 hosts drain 5,000 rows, each completed once, while one is killed and one cut off",
    function()
      local dir = h.store_path()
      local eng = h.open(dir)
      for c = 0, TOTAL - 1, 500 do
        eng:batch(function()
          for i = c + 1, c + 500 do
            assert(eng:start("job", { n = i }, { id = string.format("job-%05d", i) }))
          end
        end)
      end
      local why
      ns, why = namespaces(dir, 3)
      local tmp = h.tmpdir()
      local owners, pids, logs = {}, {}, {}
      if ns then
        -- the proof of isolation: a host sees none of the root's /tmp (a
        -- file the spec puts there), and the server is not on its
        -- loopback, only over its veth
        local x = ns.hosts[1]
        assert(io.open(tmp .. "/root-only", "w")):close()
        assert.is_false(sh(x.wrap .. " test -e " .. h.q(tmp .. "/root-only")))
        assert.is_true(sh("test -e " .. h.q(tmp .. "/root-only")))
        assert.is_false(sh(x.wrap .. " bash -c " ..
          h.q("exec 3<>/dev/tcp/127.0.0.1/" .. ns.port)))
        assert.is_true(sh(x.wrap .. " bash -c " ..
          h.q("exec 3<>/dev/tcp/" .. ns.addr .. "/" .. ns.port)))
      else
        print("hosts_spec: no network namespaces (" .. why .. "): plain processes, " ..
          (h.pg and "TCP on loopback" or "one directory") .. ", the cut by SIGSTOP")
      end
      for w = 1, 3 do
        owners[w] = "host-" .. w
        logs[w] = tmp .. "/" .. owners[w] .. ".log"
        if ns then
          -- the host writes to its stdout (the log opened out here): it
          -- cannot see this /tmp
          pids[w] = h.spawn_worker("drain", { via(ns, dir), owners[w], tostring(TOTAL), "-",
            tostring(TTL), "200" }, logs[w], ns.hosts[w].wrap)
        else
          pids[w] = h.spawn_worker("drain", { dir, owners[w], tostring(TOTAL), logs[w],
            tostring(TTL) }, logs[w])
        end
      end
      -- once every host is running bodies: kill host-1, cut host-2 off
      local started = h.poll(function()
        for w = 1, 3 do
          if #h.lines(logs[w]) < 5 then return false end
        end
        return true
      end, 60000, 5)
      assert.is_truthy(started, "the hosts did not all start running rows: " ..
        tostring(h.read_file(logs[1])) .. tostring(h.read_file(logs[2])))
      h.kill(pids[1], "KILL")
      if ns then
        assert.is_true(sh("ip link set " .. ns.hosts[2].veth .. " down"))
      else
        h.kill(pids[2], "STOP")
      end
      h.sleep_ms(3 * TTL)
      if ns then
        assert.is_true(sh("ip link set " .. ns.hosts[2].veth .. " up"))
      else
        h.kill(pids[2], "CONT")
      end
      for w = 2, 3 do
        assert.is_truthy(h.wait_exit(pids[w], 300000), owners[w] .. " did not finish")
        local lines = h.lines(logs[w])
        assert.are.equal("exit ok", lines[#lines], owners[w] .. ": " .. tostring(lines[#lines]))
      end
      local runs, done = {}, {}
      for w = 1, 3 do
        for _, l in ipairs(h.lines(logs[w])) do
          local what, id, o = l:match("^(%a+) (%S+) (%S+)$")
          if what == "run" then
            runs[id] = (runs[id] or 0) + 1
            runs[id .. " " .. o] = true
          elseif what == "done" then
            done[id .. " " .. o] = true
          end
        end
      end
      assert.are.equal(TOTAL, eng:stats().completed)
      local rows = eng:list { kind = "job" }
      assert.are.equal(TOTAL, #rows)
      local by, taken, refused = {}, 0, 0
      for _, r in ipairs(rows) do
        assert.are.equal("completed", r.status, r.id)
        assert.is_truthy((runs[r.id] or 0) >= 1, r.id .. " never ran")
        -- the outcome is the writer's who held the lease: the fence
        local winner = r.outcome.value.worker
        assert.are.equal(r.attempt.owner, winner, r.id)
        assert.are.equal(1, #h.events_of(eng, r.id, "process.completed"), r.id)
        by[winner] = (by[winner] or 0) + 1
        if ns then
          -- every journaled step is the write of the attempt started last
          -- before it: no stale write of an earlier attempt got in
          local owner
          for _, ev in ipairs(assert(eng:events(r.id, 0))) do
            if ev.type == "process.started" then
              owner = ev.payload.owner
            elseif ev.type == "process.step" then
              assert.are.equal(owner, ev.payload.value, r.id .. " seq " .. ev.seq)
            end
          end
          -- host-2 ran it and lost it (its lease lapsed behind the cut);
          -- when its body had ended, the outcome it wrote was refused
          if runs[r.id .. " host-2"] and winner ~= "host-2" then
            taken = taken + 1
            if done[r.id .. " host-2"] then refused = refused + 1 end
          end
        end
      end
      assert.is_truthy((by["host-3"] or 0) > 0, "host-3 completed nothing")
      if ns then
        assert.is_truthy(taken > 0, "no body of the cut-off host-2 was taken over")
        print(string.format("hosts_spec: %d rows host-2 lost behind the cut, %d of them after "
          .. "its body ended (its outcome refused)", taken, refused))
        assert.is_truthy((by["host-2"] or 0) > 0, "host-2 completed nothing")
      end
      assert.are.same({}, eng:check())
    end)
end)

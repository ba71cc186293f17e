-- spec/hosts_spec.lua - several "hosts" drain one store while one dies and
-- another is cut off for longer than the lease TTL (issue 12, item 3).
--
-- The hosts are plain OS processes (spec/workers/drain.lua): this spec
-- makes no network namespaces, so on PostgreSQL they reach the server over
-- TCP on loopback, and a host "loses its network" by being stopped
-- (SIGSTOP): it neither renews its leases nor writes, exactly as behind a
-- partition, and when it comes back (SIGCONT) its stale writes must be
-- refused by the fence. The same spec runs on LMDB (hosts sharing a
-- directory) and, with LASH_TEST_TARGET, on PostgreSQL.
local h = require "spec.helpers"

describe("many hosts", function()
  after_each(h.cleanup)

  it("3 hosts drain 5,000 rows, each completed once, while one is killed and one cut off",
    function()
      local dir = h.store_path()
      local eng = h.open(dir)
      local total = 5000
      for c = 0, total - 1, 500 do
        eng:batch(function()
          for i = c + 1, c + 500 do
            assert(eng:start("job", { n = i }, { id = string.format("job-%05d", i) }))
          end
        end)
      end
      local tmp = h.tmpdir()
      local owners, pids, logs = {}, {}, {}
      local ttl = 1000
      for w = 1, 3 do
        owners[w] = "host-" .. w
        logs[w] = tmp .. "/" .. owners[w] .. ".log"
        pids[w] = h.spawn_worker("drain", { dir, owners[w], tostring(total), logs[w],
          tostring(ttl) }, logs[w])
      end
      -- once every host is running bodies: kill host-1, cut host-2 off
      local started = h.poll(function()
        for w = 1, 3 do
          if #h.lines(logs[w]) < 5 then return false end
        end
        return true
      end, 30000, 5)
      assert.is_truthy(started, "the hosts did not all start running rows")
      h.kill(pids[1], "KILL")
      h.kill(pids[2], "STOP")
      h.sleep_ms(3 * ttl)
      h.kill(pids[2], "CONT")
      for w = 2, 3 do
        assert.is_truthy(h.wait_exit(pids[w], 90000), owners[w] .. " did not finish")
        local lines = h.lines(logs[w])
        assert.are.equal("exit ok", lines[#lines], owners[w] .. ": " .. tostring(lines[#lines]))
      end
      local runs = {}
      for w = 1, 3 do
        for _, l in ipairs(h.lines(logs[w])) do
          local id = l:match("^run (%S+) %S+$")
          if id then runs[id] = (runs[id] or 0) + 1 end
        end
      end
      assert.are.equal(total, eng:stats().completed)
      local rows = eng:list { kind = "job" }
      assert.are.equal(total, #rows)
      local by = {}
      for _, r in ipairs(rows) do
        assert.are.equal("completed", r.status, r.id)
        assert.is_truthy((runs[r.id] or 0) >= 1, r.id .. " never ran")
        -- the outcome is the writer's who held the lease: the fence
        assert.are.equal(r.attempt.owner, r.outcome.value.worker, r.id)
        assert.are.equal(1, #h.events_of(eng, r.id, "process.completed"), r.id)
        by[r.outcome.value.worker] = (by[r.outcome.value.worker] or 0) + 1
      end
      assert.is_truthy((by["host-3"] or 0) > 0, "host-3 completed nothing")
      assert.are.same({}, eng:check())
    end)
end)

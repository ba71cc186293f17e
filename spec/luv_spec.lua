-- lash on the loop of the luv module: a luv host's uv.run() runs lash
-- bodies too, without a second loop (issue 4, "embedding").
local h = require "spec.helpers"

describe("lash.open{loop = \"luv\"}", function()
  local uv = require "luv"
  after_each(h.cleanup)

  it("interleaves a luv timer and a lash body on one loop", function()
    local eng = h.open(nil, { loop = "luv" })
    local log = {}
    eng:define("k", function(ctx)
      log[#log + 1] = "body start"
      ctx:sleep(200)
      log[#log + 1] = "body end"
      return 7
    end)
    local id = assert(eng:start("k"))
    -- libuv timers count from the loop's cached time: refresh it first.
    uv.update_time()
    local t = uv.new_timer()
    t:start(60, 0, function() log[#log + 1] = "timer" end)
    local outcome
    eng:spawn(function()
      outcome = eng:await(id)
      t:close()
      uv.stop()
    end)
    local guard = uv.new_timer() -- the spec never hangs
    guard:start(5000, 0, function() uv.stop() end)
    uv.run()
    guard:close()
    assert.are.same({ "body start", "timer", "body end" }, log)
    assert.are.same({ status = "completed", value = 7 }, outcome)
  end)

  it("refuses a plain-code wait while uv.run runs the loop", function()
    local eng = h.open(nil, { loop = "luv" })
    local id = assert(eng:start("undefined-kind"))
    local ok, err
    local t = uv.new_timer()
    t:start(1, 0, function()
      ok, err = pcall(eng.await, eng, id, { timeout_ms = 10 })
      t:close()
      uv.stop()
    end)
    uv.run()
    assert.is_false(ok)
    assert.matches("eng:spawn", tostring(err), 1, true)
  end)

  it("eng:stop() inside a luv callback ends no uv.run of the host", function()
    local eng = h.open(nil, { loop = "luv" })
    local ticks = 0
    uv.update_time()
    local t = uv.new_timer()
    t:start(5, 5, function()
      ticks = ticks + 1
      if ticks == 1 then eng:stop() end
      if ticks == 5 then
        t:close()
        uv.stop()
      end
    end)
    local guard = uv.new_timer() -- the spec never hangs
    guard:start(5000, 0, function() uv.stop() end)
    uv.run()
    guard:close()
    assert.are.equal(5, ticks)
  end)

  it("refuses an unknown loop, naming the option", function()
    h.raises_naming(function() h.open(nil, { loop = "tokio" }) end, "loop")
  end)
end)

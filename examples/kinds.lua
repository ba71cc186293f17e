-- examples/kinds.lua - process kinds for a worker:
--
--   lash --db app.lash worker --load examples/kinds.lua
--
-- A file of kinds returns {kind = body} or {kind = {body, opts}}.
return {
  -- Completes at once with a greeting.
  greet = function(_, input)
    return { hello = input and input.name or "world" }
  end,

  -- Reports progress, then parks until someone sends the "approve" signal
  -- (lash signal ID approve '{"ok":true,"by":"ada"}') or a day passes.
  approval = {
    function(ctx, req)
      ctx:emit("progress", { step = "requested", amount = req and req.amount })
      local decision, msg, code = ctx:await_signal("approve", { timeout_ms = 86400000 })
      if decision == nil then return { approved = false, why = code .. ": " .. msg } end
      return { approved = decision.ok == true, by = decision.by }
    end,
    { disposition = "rerunnable", max_attempts = 5 },
  },

  -- Starts N children of kind "square" and sums their results.
  sum_of_squares = function(ctx, n)
    local ids = {}
    for i = 1, n or 10 do ids[i] = ctx:start("square", i) end
    local sum = 0
    for _, id in ipairs(ids) do sum = sum + ctx:await(id).value end
    return sum
  end,
  square = function(_, i) return i * i end,
}

-- examples/order_workflow.lua - a durable order, as process kinds for a
-- worker:
--
--   lash --db shop.lash worker --load examples/order_workflow.lua
--   lash --db shop.lash start order '{"amount":30,"item":"mug","ledger":"/tmp/ledger"}'
--
-- An order charges the card and reserves the item (two ctx:steps), starts
-- a shipment child and awaits it, then waits for the "delivered" signal with
-- a deadline; when the deadline passes first, a compensation refunds the
-- charge and releases the reservation (two more steps). Every side effect
-- is a line in the ledger file named by the input ("<order> <what> ...").
--
-- The body is replayed after a crash (examples/order_crash.lua kills its
-- worker with kill -9 in the middle): a step whose value is journaled does
-- not run again, the child is not started again, the shipment's sleep ends
-- at its first wake time and the deadline stays where it was. A step can run
-- twice only when the worker dies between its side effect and the commit of
-- its value: the real payment call would pass an idempotency key (the
-- charge id below) for that.
--
-- The determinism rule: everything a body decides must come from its input,
-- from ctx calls, or from step values; never read the clock, a random
-- number or a file outside a step (ctx:now(), ctx:random(), ctx:uuid() are
-- journaled for that).

-- Appends one line to the ledger (the stand-in for a payment provider and a
-- warehouse).
local function record(ledger, ...)
  local f = assert(io.open(ledger, "a"))
  f:write(table.concat({ ... }, " "), "\n")
  f:close()
end

return {
  order = function(ctx, o)
    local charge = ctx:step("charge", function()
      local charge_id = "ch-" .. ctx.id -- the idempotency key of the payment call
      record(o.ledger, ctx.id, "charge", o.amount, charge_id)
      return { charge_id = charge_id, amount = o.amount }
    end)
    local reservation = ctx:step("reserve", function()
      record(o.ledger, ctx.id, "reserve", o.item)
      return { item = o.item, slot = "A-" .. #o.item }
    end)
    local shipment = ctx:start("shipment", { order = ctx.id, item = o.item, ledger = o.ledger,
      transit_ms = o.transit_ms or 1000 })
    local shipped = ctx:await(shipment)
    if shipped.status ~= "completed" then
      error("shipment " .. shipment .. " " .. shipped.status)
    end

    local delivered, _, code = ctx:await_signal("delivered",
      { timeout_ms = o.confirm_ms or 86400000 })
    if delivered == nil then
      -- the compensation: undo what the steps did, as steps of their own
      ctx:step("refund", function()
        record(o.ledger, ctx.id, "refund", charge.amount, charge.charge_id)
        return true
      end)
      ctx:step("release", function()
        record(o.ledger, ctx.id, "release", reservation.item)
        return true
      end)
      return { status = "refunded", why = code, tracking = shipped.value.tracking }
    end
    return { status = "delivered", by = delivered.by, tracking = shipped.value.tracking,
      charge = charge.charge_id }
  end,

  shipment = function(ctx, s)
    local label = ctx:step("label", function()
      record(s.ledger, ctx.id, "label", s.item)
      return "trk-" .. s.order
    end)
    ctx:sleep(s.transit_ms) -- in transit; durable: a re-run sleeps only the rest
    ctx:step("handover", function()
      record(s.ledger, ctx.id, "handover", label)
      return true
    end)
    return { tracking = label }
  end,
}

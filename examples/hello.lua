-- examples/hello.lua - the smallest lash program: define a kind, start a
-- process, await its outcome, read its event log.
--
--   scripts/run examples/hello.lua [STORE_DIR]
--
-- Without STORE_DIR it uses a fresh temporary store and removes it at the end.
local lash = require "lash"

local dir, temp = arg[1], false
if not dir then
  dir = os.tmpname() -- a fresh file name; the store is a directory of that name
  os.remove(dir)
  dir, temp = dir .. ".lash", true
end

local eng = assert(lash.open(dir, { durability = "full" }))

eng:define("greet", function(ctx, input)
  ctx:emit("progress", { step = "greeting", who = input.name })
  return { greeting = "hello, " .. input.name, attempt = ctx.attempt }
end)

local id = assert(eng:start("greet", { name = "ada" }))
print("started " .. id)

local outcome = assert(eng:await(id, { timeout_ms = 5000 }))
print(string.format("outcome: status=%s greeting=%q attempt=%d", outcome.status,
  outcome.value.greeting, outcome.value.attempt))

for _, ev in ipairs(assert(eng:events(id))) do
  print(string.format("  event %d %s", ev.seq, ev.type))
end

eng:close()
if temp then os.execute("rm -rf '" .. dir .. "'") end
print(outcome.value.greeting == "hello, ada" and "ok" or "unexpected outcome")

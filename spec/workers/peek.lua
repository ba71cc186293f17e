-- spec/workers/peek.lua DIR ID PREFIX ROUNDS
-- Opens the store, writes PREFIXready, then for round = 1..ROUNDS waits for the file
-- PREFIX<round>.go, reads eng:get(ID) and writes "present"/"absent"/"error
-- ..." to PREFIX<round>.out. Used to look at a store from outside while the
-- spec holds a batch open.
local W = require "spec.workers.common"
local dir, id, prefix, rounds = arg[1], arg[2], arg[3], tonumber(arg[4])
local eng = W.open(dir, { owner = "peek" })
local h = W.helpers
h.write_file(prefix .. "ready", "")
for round = 1, rounds do
  local go = prefix .. round .. ".go"
  if not h.poll(function() return h.read_file(go) end, 20000, 5) then
    os.exit(1)
  end
  local r, msg, code = eng:get(id)
  local what = r and "present" or (code == "ENOENT" and "absent" or
    ("error " .. tostring(msg) .. " " .. tostring(code)))
  h.write_file(prefix .. round .. ".out.tmp", what)
  os.rename(prefix .. round .. ".out.tmp", prefix .. round .. ".out")
end
eng:close()

-- Runs an Argo CD health script the way Argo CD does: the object (JSON on standard input,
-- decoded with dkjson; null becomes nil as in Argo CD) in the global `obj`, the script's
-- return value the health. Prints {"status":…,"message":…} as JSON.
-- Usage: lua5.1 harness.lua SCRIPT.lua < object.json
local json = require("dkjson")
local text = io.read("*a")
local decoded, _, err = json.decode(text)
if err then
  io.stderr:write("harness: cannot decode the object: " .. err .. "\n")
  os.exit(2)
end
obj = decoded
local chunk, loadErr = loadfile(arg[1])
if not chunk then
  io.stderr:write("harness: " .. loadErr .. "\n")
  os.exit(2)
end
local hs = chunk()
if type(hs) ~= "table" then
  io.stderr:write("harness: the script returned " .. type(hs) .. ", not a table\n")
  os.exit(3)
end
io.write(json.encode({ status = hs.status, message = hs.message }))

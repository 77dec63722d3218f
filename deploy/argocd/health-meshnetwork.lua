-- Argo CD health of a dockmesh.io/v1alpha1 MeshNetwork (Lua 5.1, as Argo CD runs it).
-- Healthy: Ready=True for the current generation. Progressing: not yet observed (status
-- older than metadata.generation), being deleted, or machines still converging (each
-- Machine has its own health: one that needs someone shows Degraded there). Degraded: a spec
-- the controller refuses (invalid, address pool exhausted, NAT'd machines without a relay).
local hs = {}

local progressingReasons = { MachinesNotReady = true, NoMachines = true, NotObserved = true }

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then return nil end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then return c end
  end
  return nil
end

local generation = obj.metadata and obj.metadata.generation or nil
local ready = condition("Ready")

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to plan the mesh"
  return hs
end

if generation ~= nil and obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to apply generation " .. string.format("%d", generation) ..
    " (status is of generation " .. string.format("%d", obj.status.observedGeneration) .. ")"
  return hs
end

if ready == nil or (generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition of the current generation"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" and not progressingReasons[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
return hs

-- Argo CD health of a dockmesh.io/v1alpha1 Machine (Lua 5.1, as Argo CD runs it).
-- Healthy: Ready=True for the current generation. Progressing: not yet observed (status
-- older than metadata.generation), being deleted, or Ready=False for a reason that resolves
-- by itself (peers still handshaking, drift being repaired). Degraded: Ready=False for a
-- reason that needs someone (SSH refused, Docker missing, invalid spec, teardown failing).
local hs = {}

local progressingReasons = {
  NotObserved = true, NotContacted = true, PeersPending = true, HandshakePending = true,
  DriftDetected = true, MtuChangePending = true, Converging = true, Deleting = true,
}

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
  if ready ~= nil and ready.status == "False" and ready.reason == "TeardownFailed" then
    hs.status = "Degraded"
    hs.message = ready.message
  else
    hs.status = "Progressing"
    hs.message = "Being deleted: removing dockmesh's network, interface and rules from the host"
  end
  return hs
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to reach the host"
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

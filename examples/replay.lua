-- replay.lua: checkpoints, a failure, and recovery.
-- Run: spell run examples/replay.lua
-- Shows: multi-step work with Session.save checkpoints, a simulated failure caught
-- with pcall, recovery with Session.load (latest checkpoint) and Session.restore,
-- then the history: Session.checkpoints, Session.diff, Session.canReplay.

local function step(sid, name, data)
  Artifact.store(sid, "user_input", name .. "_input.json", JSON.stringify(data),
    {mime_type = "application/json", step = name})
  local result = {step = name, records = data.records, ok = true}
  Artifact.store(sid, "tool_result", name .. "_result.json", JSON.stringify(result),
    {mime_type = "application/json", step = name})
  State.set("session:" .. sid .. ":last_step", name)
  print("  step " .. name .. " done")
  return result
end

-- Work in the current session when there is one: `spell replay` re-runs this script
-- with $SPELL_SESSION naming its fork, so the replay re-creates the work there and can
-- compare it artifact by artifact. Run plainly, the script makes its own session.
local sid = Session.getCurrent()
if sid == nil then
  sid = Session.create({
    name = "Data Pipeline",
    description = "Multi-step transformation with checkpoints",
    tags = {"pipeline", "replay-demo"},
    metadata = {pipeline_version = "1.0", total_steps = 5},
  })
end
print("session " .. sid)

print("1. First steps, then a checkpoint")
step(sid, "validation", {records = 1000, source = "raw.csv"})
step(sid, "cleaning", {records = 950, removed = 50})
local cp1 = Session.save(sid, "validated and cleaned")
print("  checkpoint " .. cp1 .. ": " .. #Artifact.list(sid) .. " artifacts")

print("2. More work, another checkpoint")
step(sid, "enrichment", {records = 950, fields = {"category", "region"}})
local cp2 = Session.save(sid, "enriched")
print("  checkpoint " .. cp2 .. ": " .. #Artifact.list(sid) .. " artifacts")

print("3. A step that fails half way")
local ok, err = pcall(function()
  Artifact.store(sid, "tool_result", "transformation_partial.json", '{"rows": 412}')
  Artifact.store(sid, "tool_result", "enrichment_result.json", "corrupted by the failing step")
  error("out of memory during the join")
end)
print("  failed:", ok, err)
Session.suspend(sid)
print("  session is " .. Session.get(sid).status .. " with " .. #Artifact.list(sid) .. " artifacts")

print("4. Recovery")
-- Session.load restores the latest checkpoint and makes the session active again.
Session.load(sid)
print("  loaded: status " .. Session.get(sid).status .. ", " .. #Artifact.list(sid) .. " artifacts")
print("  enrichment_result.json is intact: " ..
  tostring(JSON.parse(Artifact.get(sid, "enrichment_result.json").content).ok))
print("  partial output gone: " .. tostring(not pcall(Artifact.get, sid, "transformation_partial.json")))

print("5. Retry in smaller batches and finish")
step(sid, "transformation_batch1", {records = 475, batch = 1})
step(sid, "transformation_batch2", {records = 475, batch = 2})
step(sid, "output", {records = 950, format = "parquet"})
local cp3 = Session.save(sid, "pipeline finished")

print("6. History")
for _, c in ipairs(Session.checkpoints(sid)) do
  print(string.format("  checkpoint %d  %s", c.number, c.message or ""))
end
local d = Session.diff(sid, cp2, cp3)
local added = {}
for _, a in ipairs(d.artifacts.added) do added[#added + 1] = a.name end
print("  added since checkpoint " .. cp2 .. ": " .. table.concat(added, ", "))
-- This run is recorded when it ends; afterwards Session.canReplay(id) is true
-- and `spell replay SESSION` re-runs it against a fork and compares the artifacts.
print("  can replay (this run is recorded when it ends): " .. tostring(Session.canReplay(sid)))

-- A fork starts a new session from any checkpoint; the original is untouched.
local fork = Session.fork(sid, cp1, {name = "Pipeline from checkpoint 1"})
print("  fork " .. fork:sub(1, 8) .. " from checkpoint " .. cp1 .. " has " .. #Artifact.list(fork) .. " artifacts")

Session.complete(sid)
print("Replay and recovery Completed!")

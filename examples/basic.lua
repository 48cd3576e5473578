-- basic.lua: sessions from creation to completion.
-- Run: spell run examples/basic.lua   (in a workspace, or anywhere: it becomes one)
-- Shows: creation with metadata, parent/child, lifecycle, persistence (State and a
-- checkpoint), the current session, queries, and error handling with pcall.

local function show(s)
  print(string.format("  %s  %-22s %-9s tags=%s  %s", s.id:sub(1, 8), s.name, s.status,
    table.concat(s.tags, ","), s.path))
end

print("1. Creating a session with metadata")
local project = Session.create({
  name = "Data Analysis",
  description = "Analysing Q4 sales data",
  tags = {"analysis", "sales", "q4"},
  metadata = {department = "sales", analyst = "ada", priority = 1, budget = 2500.5},
})
show(Session.get(project))
local meta = Session.get(project).custom_metadata
print("  priority is an " .. math.type(meta.priority) .. ", budget a " .. math.type(meta.budget))

print("2. A child session")
local region = Session.create({
  name = "EMEA Deep Dive",
  description = "One region in detail",
  tags = {"analysis", "emea"},
  parent_session_id = project,
})
show(Session.get(region))
assert(Session.get(region).parent_session_id == project)

print("3. Lifecycle: suspend, resume, complete")
Session.suspend(region)
print("  after suspend:", Session.get(region).status)
Session.resume(region)
print("  after resume: ", Session.get(region).status)
Artifact.store(region, "tool_result", "emea.txt", "EMEA grew 12% in Q4.\n")
Session.complete(region)
print("  after complete:", Session.get(region).status)

print("4. Metadata updates merge")
Session.update_metadata(project, {reviewed = true, reviewer = "grace"})
local m = Session.get(project).custom_metadata
print("  department=" .. m.department .. " reviewed=" .. tostring(m.reviewed))

print("5. Persistence")
-- State survives between runs: run this script twice and the count goes up.
local runs = (State.get("basic:runs") or 0) + 1
State.set("basic:runs", runs)
print("  this script has run " .. runs .. " time(s) in this workspace")
Artifact.store(project, "user_input", "brief.md", "# Brief\n\nFind what drove Q4.\n")
local checkpoint = Session.save(project, "brief written")
print("  checkpoint " .. checkpoint .. " saved (see checkpoints.yaml)")

print("6. The current session")
print("  current before:", Session.getCurrent() or "none")
Session.setCurrent(project)
Artifact.store(nil, "system_generated", "current.txt", "stored through the current session\n")
print("  current after set:", Session.getCurrent():sub(1, 8), "artifacts:", #Artifact.list(""))
Session.setCurrent(nil)
print("  current after clear:", Session.getCurrent() or "none")

print("7. Queries")
local scratch = Session.create({name = "Scratch", tags = {"tmp"}})
print("  active/suspended:", #Session.list())
print("  tagged analysis, any status:", #Session.list({tags = {"analysis"}, status = "all"}))
print("  completed:", #Session.list({status = "completed"}))
for _, s in ipairs(Session.list({status = "all", sort_by = "name"})) do show(s) end
Session.delete(scratch)
print("  after deleting Scratch:", #Session.list({status = "all"}))

print("8. Error handling")
local ok, err = pcall(Session.get, "0000dead")
print("  unknown id ->", ok, err)
ok, err = pcall(Session.resume, region)
print("  resume a completed session ->", ok, err)
ok, err = pcall(Session.create, {name = "x", colour = "red"})
print("  unknown option ->", ok, err)

print("Session basics Completed!")

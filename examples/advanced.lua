-- advanced.lua: hierarchies, templates, bulk work, analytics and queries.
-- Run: spell run examples/advanced.lua
-- It uses templates/research.yaml, which `spell init` (or the first `spell run`)
-- puts in every new workspace; edit that file by hand and run again to see it applied.
-- Scripts cannot write it: templates/ belongs to spellfs, and the file tools refuse it.

print("1. A three-level hierarchy: project > phase > task")
local project = Session.create({name = "Market Research", tags = {"project"}, metadata = {level = 1}})
local phases, tasks = {}, {}
for _, phase_name in ipairs({"Discovery", "Analysis"}) do
  local phase = Session.create({name = phase_name, tags = {"phase"}, parent_session_id = project,
    metadata = {level = 2}})
  phases[#phases + 1] = phase
  for t = 1, 2 do
    local task = Session.create({name = phase_name .. " task " .. t, tags = {"task"}, parent_session_id = phase,
      metadata = {level = 3}})
    tasks[#tasks + 1] = task
    Artifact.store(task, "tool_result", "finding.md", "# " .. phase_name .. " finding " .. t .. "\n")
  end
end
local function tree(id, depth)
  local s = Session.get(id)
  print(string.rep("  ", depth + 1) .. s.name .. " (" .. s.id:sub(1, 8) .. ")")
  for _, child in ipairs(Session.list({parent_session_id = id, status = "all"})) do tree(child.id, depth + 1) end
end
tree(project, 0)

print("2. Templates")
local refused = Tool.invoke("file_operations", {operation = "write", path = "templates/research.yaml",
  input = "name: hijacked\n"})
print("  a script writing templates/research.yaml: " .. tostring(refused.error))
local from_template = Session.create({template = "research", name = "Customer interviews", tags = {"q1"},
  metadata = {question = "Why do customers churn?"}})
local s = Session.get(from_template)
print("  " .. s.name .. ": " .. s.description .. "; tags " .. table.concat(s.tags, ", ") ..
  "; kind " .. s.custom_metadata.kind)

print("3. Bulk operations")
local bulk = Session.create({name = "Bulk Load", tags = {"bulk"}, parent_session_id = project})
local n = 50
local t0 = os.clock()
for i = 1, n do
  Artifact.store(bulk, i % 2 == 0 and "tool_result" or "user_input", string.format("record-%03d.json", i),
    JSON.stringify({index = i, payload = string.rep("x", i * 10)}), {tags = {i % 5 == 0 and "milestone" or "row"}})
end
local elapsed = os.clock() - t0
print(string.format("  stored %d artifacts in %.3f s of CPU (%.0f/s)", n, elapsed, n / math.max(elapsed, 1e-9)))
t0 = os.clock()
local batch = {}
for i = 1, 5 do batch[i] = Session.create({name = "batch " .. i, tags = {"batch"}, parent_session_id = bulk}) end
for _, id in ipairs(batch) do Session.complete(id) end
print(string.format("  created and completed %d sessions in %.3f s of CPU", #batch, os.clock() - t0))

print("4. Analytics")
local by_type, total, largest = {}, 0, nil
for _, a in ipairs(Artifact.query({})) do
  by_type[a.artifact_type] = (by_type[a.artifact_type] or 0) + 1
  total = total + a.size
  if not largest or a.size > largest.size then largest = a end
end
local types = {}
for k, v in pairs(by_type) do types[#types + 1] = k .. "=" .. v end
table.sort(types)
print("  artifacts by type: " .. table.concat(types, ", "))
print("  total bytes: " .. total .. "; largest: " .. largest.name .. " (" .. largest.size .. " bytes)")
local analytics = {
  sessions = #Session.list({status = "all"}),
  live_sessions = #Session.list(),
  artifacts = by_type,
  total_bytes = total,
}
State.set("advanced:analytics", analytics)
print("  saved to state.yaml under advanced:analytics")

print("5. Queries")
print("  milestones:", #Artifact.query({tags = {"milestone"}}))
print("  records over 400 bytes:", #Artifact.query({name_pattern = "record-*", min_size = 400}))
print("  first 3 tool results:", #Artifact.query({type = "tool_result", limit = 3}))
print("  tasks:", #Session.list({tags = {"task"}}))
print("  sessions by name:")
for _, x in ipairs(Session.list({status = "all", sort_by = "name", limit = 4})) do print("    " .. x.name) end
print("  completed batches:", #Session.list({status = "completed", tags = {"batch"}}))

print("Advanced patterns Completed!")

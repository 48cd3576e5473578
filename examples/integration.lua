-- integration.lua: sessions together with State, Event, Hook, Tool (and Agent when configured).
-- Run: spell run examples/integration.lua
-- With a model provider configured (see the README), the Agent branch asks a model
-- and stores its answer; without one it says so and carries on.

print("Available: State, Event, Hook, Tool" .. (Agent ~= nil and ", Agent" or " (Agent: no provider configured)"))

local sid = Session.create({
  name = "Integration Demo",
  description = "Sessions with the other globals",
  tags = {"integration", "demo"},
  metadata = {integrations = {"state", "events", "hooks", "tools"}},
})
Session.setCurrent(sid)
local key = "session:" .. sid .. ":"

print("1. State: session-scoped configuration and metrics")
State.set(key .. "config", {max_artifacts = 100, auto_save = true, retention_days = 30})
State.set(key .. "metrics", {operations = 0, artifacts_stored = 0, events_seen = 0})
local function bump(name)
  local m = State.get(key .. "metrics")
  m[name] = m[name] + 1
  State.set(key .. "metrics", m)
end
print("  config retention_days = " .. State.get(key .. "config").retention_days)

print("2. Events: wildcard subscriptions and the built-in events")
local session_events = Event.subscribe("session.*")
local artifact_events = Event.subscribe("artifact.*")
local custom_events = Event.subscribe("demo.*.done")
Event.publish("demo.step.done", {step = 1, session_id = sid})
Artifact.store(sid, "user_input", "question.txt", "What is 42 * 10 + 7?")
bump("artifacts_stored")
Session.update_metadata(sid, {stage = "asked"})
local seen = {}
for _, sub in ipairs({session_events, artifact_events, custom_events}) do
  while true do
    local e = Event.receive(sub, 10)
    if not e then break end
    seen[#seen + 1] = e.event_type
    bump("events_seen")
  end
end
print("  received: " .. table.concat(seen, ", "))

print("3. Hooks: tag every stored artifact, capture every tool result")
local tagger = Hook.register("BeforeArtifactStore", function(ctx)
  local meta = ctx.data.metadata or {}
  meta.tags = meta.tags or {}
  table.insert(meta.tags, "integration")
  return {metadata = meta}
end, "high")
local captured = 0
local capture = Hook.register("AfterToolExecution", function(ctx)
  local current = Session.getCurrent()
  if current and ctx.data.result and ctx.data.result.success then
    captured = captured + 1
    Artifact.store(current, "tool_result", "hook_captured_" .. captured .. ".json", JSON.stringify(ctx.data),
      {hook_point = ctx.point, correlation_id = ctx.correlation_id})
  end
  return "continue"
end)
local guard = Hook.register("BeforeToolExecution", function(ctx)
  if ctx.data.tool == "file_operations" and ctx.data.params.operation == "delete" then return "cancel" end
end, "highest")

print("4. Tools")
local calc = Tool.get("calculator")
local result = calc:execute({operation = "evaluate", expression = "42 * 10 + 7"})
print("  calculator: " .. result.result.result .. " (" .. result.result.result_type .. ")")
Artifact.store(sid, "tool_result", "calculation_result.json",
  JSON.stringify({tool = "calculator", input = "42 * 10 + 7", result = result.result.result}),
  {mime_type = "application/json", tool = "calculator"})
bump("operations")
local id = Tool.invoke("uuid_generator", {version = "v4"}).result.uuid
local text = Tool.invoke("template_engine", {template = "Run {{id}} answered {{answer}}",
  variables = {id = id, answer = result.result.result}}).result.rendered
Artifact.store(sid, "system_generated", "summary.txt", text)
print("  " .. text)
local ok, err = pcall(Tool.invoke, "file_operations", {operation = "delete", path = "spell.yaml"})
print("  delete blocked by a hook: " .. tostring(not ok) .. " (" .. tostring(err) .. ")")
print("  tool results captured by the hook: " .. captured)
local names = {}
for _, t in ipairs(Tool.list()) do names[#names + 1] = t.name end
print("  tools available: " .. table.concat(names, ", "))
tagger:unregister()
capture:unregister()
guard:unregister()

print("5. Agent")
if Agent ~= nil then
  local agent = Agent.create({name = "integration_assistant", model = os.getenv("SPELL_EXAMPLE_MODEL") or "openai/gpt-4o-mini",
    system_prompt = "Answer with the number only.", session_id = sid})
  local answer = agent:invoke({text = "What is 42 * 10 + 7?"})
  Artifact.store(sid, "agent_output", "agent_answer.txt", answer.text, {model = answer.model})
  print("  the model answered: " .. answer.text)
else
  print("  no provider configured: skipped (the calculator answered instead)")
end

print("6. Summary")
local m = State.get(key .. "metrics")
print(string.format("  operations=%d artifacts_stored=%d events_seen=%d", m.operations, m.artifacts_stored, m.events_seen))
local index = {}
for _, a in ipairs(Artifact.list(sid)) do
  index[a.artifact_type] = index[a.artifact_type] or {}
  table.insert(index[a.artifact_type], a.name)
end
State.set(key .. "index", index)
for _, sub in ipairs({session_events, artifact_events, custom_events}) do Event.unsubscribe(sub) end
Session.setCurrent(nil)
Session.complete(sid)
print("Integration Completed!")

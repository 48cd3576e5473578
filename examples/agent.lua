-- agent.lua: ask a model through Agent, keep a conversation, and look at what was recorded.
-- Run: spell run examples/agent.lua
-- Needs a provider (see README.md): OPENAI_API_KEY (+ OPENAI_BASE_URL for any OpenAI-compatible
-- server), ANTHROPIC_API_KEY, or agents.providers in spell.yaml. SPELL_EXAMPLE_MODEL=provider/model
-- picks the model (default openai/gpt-4o-mini).

if Agent == nil then
  print("Agent is nil: no model provider configured (see examples/README.md)")
  print("Agent example skipped; Completed!")
  return
end

local sid = Session.getCurrent() or os.getenv("SPELL_SESSION")
if sid == nil then
  sid = Session.create({name = "Agent Demo", description = "Model calls recorded as history", tags = {"agent", "demo"}})
end
Session.setCurrent(sid)
local model = os.getenv("SPELL_EXAMPLE_MODEL") or "openai/gpt-4o-mini"

print("1. One question")
local agent = Agent.create({name = "assistant", model = model, system_prompt = "You are terse.",
  temperature = 0, max_tokens = 64})
local first = agent:invoke({text = "Name three primary colours."})
print("  " .. first.model .. " said: " .. first.text)
print(string.format("  tokens: %d in, %d out; finish: %s", first.usage.input_tokens, first.usage.output_tokens,
  tostring(first.finish_reason)))

print("2. A conversation: pass the earlier turns as messages")
local second = agent:invoke({messages = {
  {role = "user", content = "Name three primary colours."},
  {role = "assistant", content = first.text},
  {role = "user", content = "Now name one secondary colour."},
}})
print("  " .. second.text)
Artifact.store(sid, "agent_output", "answer.md", second.text, {model = second.model})

print("3. Mistakes are Lua errors you can catch")
local ok, err = pcall(Agent.create, {name = "nowhere", model = "no-such-provider/some-model"})
print("  " .. tostring(not ok) .. ": " .. tostring(err))
ok, err = pcall(agent.invoke, agent, {})
print("  " .. tostring(not ok) .. ": " .. tostring(err))

print("4. What was recorded")
for _, a in ipairs(Agent.list()) do print("  agent " .. a.name .. " -> " .. a.model) end
local usage = Session.get(sid).usage
print(string.format("  %d calls, %d input and %d output tokens", usage.calls, usage.input_tokens, usage.output_tokens))
for _, a in ipairs(Artifact.query({session_id = sid, type = "agent_output", name_pattern = "assistant-*"})) do
  print("  " .. a.name)
end
print("  see calls.yaml in " .. Session.get(sid).path .. "; `spell replay` answers these calls from the records")
print("Agent Completed!")

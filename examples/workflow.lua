-- workflow.lua: rs-llmspell's Workflow global on spellfs.
-- A sequential pipeline of tool steps chained with {{step:NAME:output}}, a parallel
-- fan-out, a conditional, a loop, and (when a provider is configured) an agent step.
-- Every run is recorded in the current session as workflow-<name>.json.

local sid = Session.getCurrent()
if sid == nil or sid == "" then
  sid = Session.create({name = "workflow-demo", tags = {"example"}})
  Session.setCurrent(sid)
end

print("1. sequential: a CSV report")
local report = Workflow.sequential({
  name = "csv_report",
  steps = {
    {name = "stats", tool = "csv_analyzer",
     input = {operation = "analyze", input = "item,price\napple,1.5\npear,2.5\nfig,3\n"}},
    {name = "total", tool = "json_processor",
     input = {operation = "query", input = "{{step:stats:output}}", query = ".statistics.price.sum"}},
    {name = "text", tool = "template_engine",
     input = {input = "Total price: {{total}}", context = {total = "{{step:total:output}}"}}},
    {name = "save", tool = "file_operations",
     input = {operation = "write", path = "report.txt", input = "{{step:text:output}}\n"}},
  },
})
local r = report:execute()
local saved = Tool.invoke("file_operations", {operation = "read", path = "report.txt"})
print("  success:", r.success, "report.txt:", (saved.result.content:gsub("\n", "")))

print("2. parallel: three hashes at once (max_concurrency = 2)")
local hashes = Workflow.parallel({
  name = "hashes", max_concurrency = 2,
  branches = {
    {name = "md5", steps = {{name = "h1", tool = "hash_calculator", input = {input = "spell", algorithm = "md5"}}}},
    {name = "sha1", steps = {{name = "h2", tool = "hash_calculator", input = {input = "spell", algorithm = "sha1"}}}},
    {name = "sha256", steps = {{name = "h3", tool = "hash_calculator", input = {input = "spell"}}}},
  },
})
local h = hashes:execute()
print("  branches ok:", h.data.successful_branches, "md5:", h.data.final_output.md5)

print("3. conditional: a tool decides the branch")
local route = Workflow.conditional({
  name = "route",
  branches = {
    {name = "big", condition = {tool = "json_processor",
      input = {operation = "query", input = '{"size": 120}', query = ".size > 100"}},
     steps = {{name = "say_big", tool = "text_manipulator", input = {operation = "uppercase", input = "big batch"}}}},
  },
  default_branch = {steps = {{name = "say_small", tool = "text_manipulator",
                              input = {operation = "lowercase", input = "SMALL BATCH"}}}},
})
print("  branch:", route:execute().data.final_output)

print("4. loop: squares of 1..4")
local squares = Workflow.loop({
  name = "squares",
  iterator = {range = {start = 1, ["end"] = 4, step = 1}},
  body = {{name = "sq", tool = "calculator", input = {input = "{{loop:current_value}} ^ 2"}}},
})
local s = squares:execute()
print("  iterations:", s.data.completed_iterations, "last:", s.data.final_output)

print("5. errors: fail_fast stops, continue goes on")
local steps = {{name = "bad", tool = "calculator", input = {input = "1 / 0"}},
               {name = "after", tool = "calculator", input = {input = "6 * 7"}}}
local ff = Workflow.sequential({name = "fail_fast_demo", steps = steps}):execute()
local co = Workflow.sequential({name = "continue_demo", steps = steps, error_strategy = "continue"}):execute()
print("  fail_fast:", ff.success, tostring(ff.error))
print("  continue:", co.success, co.data.final_output)

if Agent ~= nil then
  print("6. an agent step")
  Agent.create({name = "summarizer", model = (os.getenv and os.getenv("SPELL_EXAMPLE_MODEL")) or "gpt-4o-mini",
                system_prompt = "Answer in one sentence."})
  local a = Workflow.sequential({name = "summary", steps = {
    {name = "ask", type = "agent", agent = "summarizer",
     input = {prompt = "Summarize:", text = "{{input:topic}}"}},
  }}):execute({topic = "workflows recorded as files"})
  print("  answer:", a.success and a.data.final_output or tostring(a.error))
else
  print("6. (no model provider configured: the agent step is skipped)")
end

print("Completed! The runs are in sessions/*/files/workflow-*.json")

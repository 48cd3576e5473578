-- artifacts.lua: storing and reading artifacts of every kind.
-- Run: spell run examples/artifacts.lua
-- Shows: text, JSON, binary, metadata and tags, versions, content addressing,
-- compression, storeFile, queries, the current session, deletion.

local sid = Session.create({name = "Artifact Demo", tags = {"demo", "artifacts"}})
Session.setCurrent(sid)
print("session " .. sid)

print("1. Text with metadata and tags")
local report = Artifact.store(sid, "tool_result", "report.txt",
  "Sales Analysis\n\nQ4 grew 15% over Q3.\nTop regions: EMEA, APAC\n",
  {mime_type = "text/plain", description = "Quarterly summary", tags = {"analysis", "q4"},
   tool = "sales_analyzer", execution_time = 2.5})
print(string.format("  report.txt  hash=%s… sequence=%d", report.content_hash:sub(1, 12), report.sequence))
local got = Artifact.get(sid, report)
print("  custom metadata: tool=" .. got.metadata.custom.tool .. " execution_time=" .. got.metadata.custom.execution_time)

print("2. JSON")
local metrics = {revenue = 1500000, growth = 0.15, regions = {"EMEA", "APAC", "AMERICAS"}}
Artifact.store(sid, "agent_output", "metrics.json", JSON.stringify(metrics),
  {mime_type = "application/json", tags = {"metrics"}})
local back = JSON.parse(Artifact.get(sid, "metrics.json").content)
print("  revenue " .. back.revenue .. " (" .. math.type(back.revenue) .. "), regions " .. table.concat(back.regions, ", "))

print("3. Binary: a PNG header and every byte value")
local bytes = {string.char(0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A)}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local png = table.concat(bytes)
Artifact.store(sid, "system_generated", "chart.png", png, {mime_type = "image/png", tags = {"chart"}})
local image = Artifact.get(sid, "chart.png")
print(string.format("  %d bytes, identical: %s, first bytes %02X %02X %02X %02X", image.metadata.size,
  tostring(image.content == png), image.content:byte(1, 4)))

print("4. Versions")
Artifact.store(sid, "user_input", "notes.md", "# Notes\n\nfirst draft\n")
Artifact.store(sid, "user_input", "notes.md", "# Notes\n\nsecond draft\n")
print("  latest is version " .. Artifact.get(sid, "notes.md").metadata.version ..
  "; version 1 says: " .. Artifact.get(sid, "notes.md@1").content:match("(%w+ draft)"))

print("5. Content addressing: same bytes, same hash, one object")
local a = Artifact.store(sid, "user_input", "copy-a.txt", "identical content\n")
local b = Artifact.store(sid, "user_input", "copy-b.txt", "identical content\n")
print("  same hash: " .. tostring(a.content_hash == b.content_hash))

print("6. Compression above artifact_compression_threshold (10240 bytes)")
local large = string.rep("This is test data for compression. ", 1000)
Artifact.store(sid, "system_generated", "large.txt", large, {tags = {"large"}})
local big = Artifact.get(sid, "large.txt")
print(string.format("  %d bytes, compressed in the store: %s, read back intact: %s",
  big.metadata.size, tostring(big.metadata.is_compressed), tostring(big.content == large)))

print("7. storeFile")
local path = "input.csv"  -- a file in the current directory; the artifact takes its name
local f = assert(io.open(path, "wb"))
f:write("name,amount\nada,10\ngrace,20\n")
f:close()
local fid = Artifact.storeFile(sid, path, "user_input", {source = "filesystem"})
local stored = Artifact.get(sid, fid)
print("  stored " .. stored.metadata.name .. " (" .. stored.metadata.size .. " bytes) from " .. path)
os.remove(path)

print("8. Listing and queries")
for _, item in ipairs(Artifact.list("")) do  -- "" is the current session
  print(string.format("  %-14s %-17s %6d bytes  v%d", item.name, item.artifact_type, item.size, item.version))
end
print("  tagged q4:", #Artifact.query({session_id = sid, tags = {"q4"}}))
print("  *.txt:", #Artifact.query({session_id = sid, name_pattern = "*.txt"}))
print("  over 10 KiB:", #Artifact.query({session_id = sid, min_size = 10240}))

print("9. Deletion")
Artifact.store(sid, "user_input", "draft.txt", "to be removed\n")
Artifact.delete(sid, "draft.txt")
local ok, err = pcall(Artifact.get, sid, "draft.txt")
print("  after delete:", ok, err)
ok, err = pcall(Artifact.store, sid, "user_input", "../escape.txt", "x")
print("  a name with a path:", ok, err)

Session.setCurrent(nil)
print("Artifact management Completed!")

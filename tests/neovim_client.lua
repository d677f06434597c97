-- Drives nexus-ls through the NEXUS Neovim plugin as a user would, in a headless Neovim, and
-- writes what the user would see (buffer lines, picker items, health report) as JSON to
-- params.out. Parameters arrive in _G.params: scenario, repo, cmd, base_url, out. The user's
-- side is stubbed only where a person would act: vim.ui.select answers from a queue.
local p = _G.params
local observed = { notifications = {}, progress = {}, pickers = {} }
local answers = {} -- what the user picks in the next vim.ui.select, in order

local function wait(ms, what, done)
  if not vim.wait(ms, done, 20) then
    error("timed out waiting for " .. what)
  end
end

local function lines(buf)
  return vim.api.nvim_buf_get_lines(buf or 0, 0, -1, false)
end

local function buffer_named(name)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(buf) == name then
      return buf
    end
  end
end

local function notified(pattern)
  for _, n in ipairs(observed.notifications) do
    if n.msg:find(pattern, 1, true) then
      return n.msg
    end
  end
end

--- The user's choice: the first item whose text (as the picker shows it) holds `text`.
local function pick(text)
  table.insert(answers, function(items, shown)
    for i, s in ipairs(shown) do
      if s:find(text, 1, true) then
        return items[i]
      end
    end
    error(("nothing like %q among %s"):format(text, vim.inspect(shown)))
  end)
end

local function stub_user()
  vim.notify = function(msg, level)
    table.insert(observed.notifications, { msg = msg, level = level })
  end
  vim.ui.select = function(items, opts, on_choice)
    local shown = {}
    for i, item in ipairs(items) do
      shown[i] = opts.format_item and opts.format_item(item) or tostring(item)
    end
    table.insert(observed.pickers, { prompt = opts.prompt, kind = opts.kind, items = shown })
    local answer = table.remove(answers, 1)
    local ok, choice = pcall(answer or function() end, items, shown)
    vim.schedule(function()
      on_choice(ok and choice or nil)
    end)
    if not ok then
      error(choice)
    end
  end
end

local function setup()
  stub_user()
  vim.cmd.runtime("plugin/nexus.lua")
  local nexus = require("nexus")
  -- Settings at the top level, as a user writes them; the plugin passes them to the server.
  nexus.setup({ cmd = p.cmd, baseUrl = p.base_url, maxSteps = 10 })
  vim.api.nvim_create_autocmd("LspProgress", {
    callback = function(ev)
      local value = ev.data.params.value
      table.insert(observed.progress, {
        kind = value.kind,
        message = value.message,
        statusline = nexus.statusline(),
        lsp_status = vim.lsp.status(),
      })
    end,
  })
  vim.cmd.edit(p.repo .. "/calc.py") -- vim.lsp.enable attaches the client to this buffer
  wait(15000, "the client to start", function()
    return nexus.client() ~= nil
  end)
  observed.root_dir = nexus.client().root_dir
  return nexus
end

--- Starts a run with the command line and returns its id (the run this session knows of).
local function run(nexus, cmdline)
  local before = vim.tbl_count(nexus.running) + vim.tbl_count(nexus.ended)
  vim.cmd(cmdline)
  wait(15000, "the run to start", function()
    return vim.tbl_count(nexus.running) + vim.tbl_count(nexus.ended) > before
  end)
  local newest
  for id in pairs(vim.tbl_extend("force", {}, nexus.running, nexus.ended)) do
    newest = (newest == nil or id > newest) and id or newest
  end
  return newest
end

local function health()
  vim.cmd("checkhealth nexus")
  local report = lines()
  vim.cmd("tabclose")
  return report
end

local scenarios = {}

-- Setup, :NexusRun on a visual selection, the run's result, :NexusRuns, diff, report, accept.
function scenarios.review()
  local nexus = setup()
  vim.cmd("normal! ggVj\27") -- select lines 1-2 of calc.py, then <Esc>: the marks are set
  local id = run(nexus, "'<,'>NexusRun fix the failing test")
  observed.run_id = id
  wait(5000, "the run's start to be said", function()
    return notified("run " .. id .. " started") ~= nil
  end)
  observed.started = notified("run " .. id .. " started")
  wait(30000, "the run to end", function()
    return nexus.ended[id] ~= nil
  end)
  observed.status = nexus.ended[id]
  wait(5000, "the run's progress to end", function()
    return observed.progress[#observed.progress].kind == "end"
  end)
  observed.statusline_after = nexus.statusline()
  observed.log = lines(nexus.log_buffer())
  observed.health = health()

  -- :NexusRuns: pick the run, then "diff": the diff opens in a split.
  pick(id)
  pick("diff")
  local windows = #vim.api.nvim_list_wins()
  vim.cmd("NexusRuns")
  wait(5000, "the diff split", function()
    return vim.api.nvim_buf_get_name(0) == "nexus://diff/" .. id
  end)
  observed.diff_buffer = lines()
  observed.diff_filetype = vim.bo.filetype
  observed.diff_split = #vim.api.nvim_list_wins() == windows + 1
  vim.cmd("close")

  -- :NexusDiff {run} opens the same diff; a prefix of the id is enough.
  vim.cmd("NexusDiff " .. id:sub(1, 18))
  wait(5000, ":NexusDiff", function()
    return vim.api.nvim_buf_get_name(0) == "nexus://diff/" .. id
  end)
  observed.nexus_diff = lines()
  vim.cmd("close")

  -- :NexusRuns, "show report": the server opens the report.
  pick(id)
  pick("show report")
  vim.cmd("NexusRuns")
  wait(5000, "the report", function()
    return vim.endswith(vim.api.nvim_buf_get_name(0), id .. ".md")
  end)
  observed.report = lines()

  -- :NexusRuns, "accept": calc.py is open in a buffer, which is updated too.
  pick(id)
  pick("accept")
  vim.cmd("NexusRuns")
  wait(5000, "accept", function()
    return notified("run " .. id .. " accepted") ~= nil
  end)
  observed.accepted = notified("run " .. id .. " accepted")
  observed.calc_buffer = lines(vim.fn.bufnr(p.repo .. "/calc.py"))

  -- :NexusLog {query}: the journal's test events.
  vim.cmd("NexusLog category=test")
  wait(5000, ":NexusLog", function()
    return vim.api.nvim_buf_get_name(0) == "nexus://log"
  end)
  observed.nexus_log = lines()
  wait(5000, "the accept event", function()
    return vim.tbl_contains(lines(nexus.log_buffer()), function(l)
      return l:find("run accepted", 1, true) ~= nil
    end, { predicate = true })
  end)
  observed.log_after_accept = lines(nexus.log_buffer())
end

-- A plan watched live, an approval answered, what the run remembered, a cancelled run.
function scenarios.autonomy()
  local nexus = setup()
  observed.health_before = health()
  pick("Deny") -- the user's answer to the push the run asks for
  local id = run(nexus, "NexusRun plan, push and remember")
  observed.run_id = id
  vim.cmd("NexusPlan " .. id) -- opened at once: it follows the run's plan as it changes
  observed.plans_seen = {}
  vim.api.nvim_create_autocmd("User", {
    pattern = "NexusEvent",
    callback = function()
      local buf = buffer_named("nexus://plan")
      local now = buf and table.concat(lines(buf), "\n")
      if now and now ~= observed.plans_seen[#observed.plans_seen] then
        table.insert(observed.plans_seen, now)
      end
    end,
  })
  wait(30000, "the run to end", function()
    return nexus.ended[id] ~= nil
  end)
  observed.status = nexus.ended[id]
  observed.plan_view = lines(buffer_named("nexus://plan"))
  observed.log = lines(nexus.log_buffer())
  observed.health = health()

  vim.cmd("NexusMemory")
  wait(5000, ":NexusMemory", function()
    return vim.api.nvim_buf_get_name(0) == "nexus://memory"
  end)
  observed.memory = lines()
  -- Forget the lesson under the cursor with the view's `x`.
  for i, line in ipairs(lines()) do
    if line:find("make schema", 1, true) then
      vim.api.nvim_win_set_cursor(0, { i, 0 })
    end
  end
  vim.cmd("normal x")
  wait(5000, "the lesson to be forgotten", function()
    return notified("forgot") ~= nil and not table.concat(lines(), "\n"):find("make schema")
  end)
  observed.memory_after_forget = lines()
  vim.cmd("close")

  -- A run whose model never answers, stopped with :NexusCancel (no argument: the one running).
  local hung = run(nexus, "NexusRun wait for a model that never answers")
  wait(15000, "the agent to start", function()
    for _, event in ipairs(nexus.events[hung] or {}) do
      if event.category == "agent" then
        return true
      end
    end
  end)
  observed.statusline_running = nexus.statusline()
  vim.cmd("NexusCancel")
  wait(15000, "the cancelled run to end", function()
    return nexus.ended[hung] ~= nil
  end)
  observed.hung_id, observed.hung_status = hung, nexus.ended[hung]
  wait(5000, "the statusline to clear", function()
    return nexus.statusline() == ""
  end)
  observed.statusline_after = nexus.statusline()
end

local ok, err = xpcall(scenarios[p.scenario], debug.traceback)
observed.error = not ok and err or nil
local file = assert(io.open(p.out, "w"))
file:write(vim.json.encode(observed))
file:close()
vim.cmd(ok and "qa!" or "cquit 1")

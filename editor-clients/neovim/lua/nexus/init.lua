-- NEXUS for Neovim (0.11+): registers `nexus-ls` with vim.lsp.config/vim.lsp.enable for files
-- in git repositories, wraps the server's commands, and shows what it says: `nexus/event`s
-- in a scratch log buffer, progress for the statusline, approvals through vim.ui.select, and
-- views of a run's plan and of the workspace's memory. The server does the work.
local M = {}

--- The server's settings (section `nexus`, docs/lsp.md#settings). setup{} takes them under
--- `settings` or at the top level.
M.SETTINGS = {
  "model",
  "baseUrl",
  "localModel",
  "toolMode",
  "guided",
  "maxSteps",
  "maxTokens",
  "wallTime",
  "commandTimeout",
  "contextTokens",
  "contextWindow",
  "memoryTokens",
  "maxDepth",
  "maxAgents",
  "parallelAgents",
  "candidates",
  "sandbox",
  "network",
}
local IS_SETTING = {}
for _, key in ipairs(M.SETTINGS) do
  IS_SETTING[key] = true
end

M.config = {
  cmd = { "nexus-ls" },
  -- The `nexus` settings (baseUrl, model, maxSteps, ...), sent as initializationOptions and
  -- answered to workspace/configuration.
  settings = {},
  -- `nexus/event`s at this level or above are also shown with vim.notify (all go to the log
  -- buffer). The server itself says how each run ended with window/showMessage.
  notify_level = vim.log.levels.WARN,
  -- Start the server for every file buffer inside a git repository (vim.lsp.enable).
  autostart = true,
  -- Echo each progress report in the command line.
  echo_progress = true,
  -- Lines kept in the event log buffer.
  log_lines = 5000,
}
M.did_setup = false

--- runId -> the `nexus/event`s received for it, in order.
M.events = {}
--- runId -> how the run ended (succeeded, failed, cancelled, interrupted), once it has.
M.ended = {}
--- runId -> the run's latest plan (PlanData: plan, current, done, total, source).
M.plans = {}
--- runId -> { task } for runs of this session that have not ended.
M.running = {}
--- The last run's sandbox ({ runId, message, mode }) and model ({ runId, name }).
M.last_sandbox, M.last_model = nil, nil
--- The latest progress message of each run in progress (token -> message).
M.progress = {}

local LEVELS = {
  DEBUG = vim.log.levels.DEBUG,
  INFO = vim.log.levels.INFO,
  WARNING = vim.log.levels.WARN,
  ERROR = vim.log.levels.ERROR,
}
local END_STATUSES = { succeeded = true, failed = true, cancelled = true, interrupted = true }

local function notify(msg, level)
  vim.notify("NEXUS: " .. msg, level or vim.log.levels.INFO)
end

-- JSON null arrives as vim.NIL.
local function val(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

local function is_file(bufnr)
  return vim.api.nvim_buf_is_valid(bufnr)
    and vim.bo[bufnr].buftype == ""
    and vim.api.nvim_buf_get_name(bufnr) ~= ""
end

local function git_root(bufnr)
  if not is_file(bufnr) then
    return nil
  end
  return vim.fs.root(bufnr, ".git")
end

-- Scratch buffers ------------------------------------------------------------------------------

local function find_buf(name)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(buf) and vim.api.nvim_buf_get_name(buf) == name then
      return buf
    end
  end
end

--- The scratch buffer called `name` (made if needed), its text replaced by `lines` if given.
local function scratch(name, lines, filetype)
  local buf = find_buf(name)
  if not buf then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].buftype, vim.bo[buf].bufhidden, vim.bo[buf].swapfile = "nofile", "hide", false
  end
  if filetype then
    vim.bo[buf].filetype = filetype
  end
  if lines then
    vim.bo[buf].modifiable = true
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.bo[buf].modifiable = false
  end
  return buf
end

--- Shows `buf` in a split at the bottom (or focuses the window already showing it).
local function show(buf, split)
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    vim.api.nvim_set_current_win(win)
  else
    vim.cmd(split or "botright split")
    vim.api.nvim_win_set_buf(0, buf)
  end
  return buf
end

local function split_lines(text)
  return vim.split(tostring(text or ""), "\n", { plain = true, trimempty = true })
end

--- One journal event as log lines: `14:05:52 INFO    edit    [run/step] message`.
function M.format_event(event)
  local ts = type(event.ts) == "string" and event.ts:sub(12, 19) or "--:--:--"
  local where = val(event.run) or "workspace"
  if val(event.step) then
    where = where .. "/" .. tostring(event.step)
  end
  local head = ("%s %-7s %-7s [%s] "):format(ts, event.level or "?", event.category or "?", where)
  local lines = split_lines(event.message)
  local out = { head .. (lines[1] or "") }
  for i = 2, #lines do
    table.insert(out, (" "):rep(#head) .. lines[i])
  end
  return out
end

--- The buffer `nexus://events`, where every `nexus/event` is written as it arrives.
function M.log_buffer()
  return scratch("nexus://events", nil, "nexuslog")
end

local function append_log(lines)
  local buf = M.log_buffer()
  local count = vim.api.nvim_buf_line_count(buf)
  local empty = count == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ""
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, empty and 0 or -1, -1, false, lines)
  local over = vim.api.nvim_buf_line_count(buf) - M.config.log_lines
  if over > 0 then
    vim.api.nvim_buf_set_lines(buf, 0, over, false, {})
  end
  vim.bo[buf].modifiable = false
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do -- follow the end, as a log does
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 })
  end
end

--- Opens the event log in a split.
function M.open_log()
  return show(M.log_buffer())
end

-- Handlers -------------------------------------------------------------------------------------

local plan_views = {} -- runId -> true when the plan view shows that run

local function on_event(_, params)
  params = type(params) == "table" and params or {}
  local id, event = val(params.runId), type(params.event) == "table" and params.event or {}
  local data = type(val(event.data)) == "table" and event.data or {}
  if id then
    M.events[id] = M.events[id] or {}
    table.insert(M.events[id], event)
    if event.category == "run" and vim.startswith(event.message or "", "run started") then
      M.running[id] = M.running[id] or { task = data.task }
    end
    if event.category == "run" and type(data.sandbox) == "table" then
      M.last_sandbox = { runId = id, message = event.message, mode = data.sandbox.mode }
    end
    if event.category == "agent" and type(data.model) == "string" then
      M.last_model = { runId = id, name = data.model }
    end
    if event.category == "agent" and type(data.plan) == "table" then
      M.plans[id] = data
      if plan_views[id] then
        M.plan(id)
      end
    end
  end
  append_log(M.format_event(event))
  local level = LEVELS[event.level] or vim.log.levels.INFO
  if level >= M.config.notify_level then
    notify(("%s: %s"):format(id or "memory", event.message or ""), level)
  end
  vim.api.nvim_exec_autocmds("User", { pattern = "NexusEvent", data = params, modeline = false })
  -- A run's end is the run/error event whose data is RunEndData (nexus_ls/journal/shapes.py):
  -- data.status with the agent's exit code, never a pattern on the message.
  local status = (event.category == "run" or event.category == "error")
    and type(data.exit_code) == "number"
    and data.status
  if id and status and END_STATUSES[status] then
    M.ended[id] = status
    M.running[id] = nil
    if plan_views[id] then
      M.plan(id) -- its title says how the run ended
    end
    vim.cmd.redrawstatus({ bang = true })
    vim.api.nvim_exec_autocmds("User", {
      pattern = "NexusRunEnd",
      data = { runId = id, status = status, summary = val(data.summary), error = val(data.error) },
      modeline = false,
    })
  end
end

-- Approvals (a push, a command wanting the network, a rule with decision = "ask") arrive as
-- window/showMessageRequest; the run waits for the choice. Server requests run in a coroutine,
-- so the answer can wait for vim.ui.select. Other servers' questions go to Neovim's handler.
local function on_message_request(err, params, ctx)
  local default = vim.lsp.handlers["window/showMessageRequest"]
  local message = type(params) == "table" and params.message or ""
  local co, is_main = coroutine.running()
  if type(message) ~= "string" or not message:find("^NEXUS") or not co or is_main then
    return default(err, params, ctx)
  end
  append_log({ os.date("%H:%M:%S") .. " ASK     approval " .. message })
  vim.ui.select(params.actions or {}, {
    prompt = message,
    kind = "nexus_approval",
    format_item = function(action)
      return action.title
    end,
  }, function(choice)
    append_log({
      os.date("%H:%M:%S") .. " ASK     approval answered: " .. (choice and choice.title or "(dismissed)"),
    })
    vim.schedule(function()
      coroutine.resume(co, choice or vim.NIL)
    end)
  end)
  return coroutine.yield()
end

local function on_progress(ev)
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  local params = ev.data.params or {}
  local value = params.value
  if not (client and client.name == "nexus" and type(value) == "table") then
    return
  end
  local text = value.message or value.title or ""
  if value.kind == "end" then
    M.progress[params.token] = nil
  else
    M.progress[params.token] = text
  end
  if M.config.echo_progress then
    vim.api.nvim_echo({ { "NEXUS " .. (value.kind or "") .. ": " .. text } }, false, {})
  end
  vim.cmd.redrawstatus({ bang = true })
end

--- For a statusline: `NEXUS 1 running: plan 2/3: fix add()`, or "" when nothing runs.
--- (`vim.lsp.status()` shows the same progress, with every other server's.)
function M.statusline()
  local count = vim.tbl_count(M.running)
  local latest
  for _, message in pairs(M.progress) do
    latest = message
  end
  if count == 0 and not latest then
    return ""
  end
  return ("NEXUS %d running%s"):format(math.max(count, 1), latest and (": " .. latest) or "")
end

-- The client -----------------------------------------------------------------------------------

--- The vim.lsp.config of NEXUS: what setup registers as `vim.lsp.config("nexus", ...)`.
function M.lsp_config()
  local settings = next(M.config.settings) and M.config.settings or vim.empty_dict()
  return {
    cmd = M.config.cmd,
    root_dir = function(bufnr, on_dir)
      local root = git_root(bufnr)
      if root then
        on_dir(root)
      end
    end,
    init_options = { nexus = settings },
    settings = { nexus = settings },
    handlers = {
      ["nexus/event"] = on_event,
      ["window/showMessageRequest"] = on_message_request,
    },
  }
end

--- Starts (or reuses) the NEXUS client for `bufnr`'s git repository by hand.
--- @return integer? client_id
function M.start(bufnr, overrides)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local config = vim.tbl_extend("force", vim.deepcopy(vim.lsp.config.nexus or M.lsp_config()), {
    name = "nexus",
    root_dir = git_root(bufnr),
  }, overrides or {})
  if type(config.root_dir) ~= "string" then
    return nil
  end
  return vim.lsp.start(config, { bufnr = bufnr })
end

--- The initialized NEXUS client attached to `bufnr` (default: current), else any.
--- @return vim.lsp.Client?
function M.client(bufnr)
  if not bufnr or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  return vim.lsp.get_clients({ name = "nexus", bufnr = bufnr })[1]
    or vim.lsp.get_clients({ name = "nexus" })[1]
end

-- A client for a command: the running one, else one started for the current buffer (waited for).
local function ready_client(bufnr)
  local client = M.client(bufnr)
  if client then
    return client
  end
  local id = M.start(bufnr)
  if not id then
    return nil
  end
  vim.wait(15000, function()
    local c = vim.lsp.get_client_by_id(id)
    return c == nil or c.initialized
  end, 20)
  local c = vim.lsp.get_client_by_id(id)
  return c and c.initialized and c or nil
end

--- Runs a NEXUS command (`workspace/executeCommand` with one object argument).
--- `callback(err, result)` defaults to reporting errors; results are then dropped.
function M.execute(command, arg, callback, bufnr)
  callback = callback
    or function(err)
      if err then
        notify(err.message, vim.log.levels.ERROR)
      end
    end
  local client = ready_client(bufnr)
  if not client then
    notify("no nexus-ls running; open a file inside a git repository", vim.log.levels.ERROR)
    return callback({ code = -1, message = "no nexus-ls running" })
  end
  local params = { command = command, arguments = { arg } }
  client:request("workspace/executeCommand", params, callback, bufnr or 0)
end

local function reporting(on_result)
  return function(err, result)
    if err then
      return notify(err.message, vim.log.levels.ERROR)
    end
    on_result(result)
  end
end

-- Commands -------------------------------------------------------------------------------------

--- Starts a run. `opts.bufnr` with `opts.line1`/`opts.line2` (1-based) sends that selection,
--- with the diagnostics in it.
function M.run(task, opts, callback)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local arg = { task = task }
  if is_file(bufnr) then
    arg.uri = vim.uri_from_bufnr(bufnr)
  end
  if arg.uri and opts.line1 and opts.line2 then
    arg.range = {
      start = { line = opts.line1 - 1, character = 0 },
      ["end"] = { line = opts.line2, character = 0 },
    }
    arg.diagnostics = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.lnum >= opts.line1 - 1 and d.lnum < opts.line2 then
        local at = { line = d.lnum, character = d.col }
        table.insert(arg.diagnostics, {
          range = { start = at, ["end"] = at },
          message = d.message,
          source = d.source,
        })
      end
    end
  end
  M.execute("nexus.run", arg, function(err, result)
    if not err and type(result) == "table" and result.runId then
      if not M.ended[result.runId] then
        M.running[result.runId] = { task = task }
      end
    end
    if callback then
      return callback(err, result)
    end
    if err then
      return notify(err.message, vim.log.levels.ERROR)
    end
    notify(("run %s started on %s; :NexusEvents shows it"):format(result.runId, result.branch))
  end, bufnr)
end

--- One run as a picker line: sub-agents indented under their parent.
function M.format_run(r)
  local indent = ("  "):rep(tonumber(val(r.depth)) or 0)
  local review = val(r.review) and (" " .. r.review) or ""
  local what = val(r.task) or val(r.error) or ""
  return ("%s%s  %s%s  %s"):format(indent, r.runId, r.status or "?", review, what)
end

-- Sub-agents right under their parent, newest tree first (the server lists newest first).
local function as_tree(runs)
  local children, top, out = {}, {}, {}
  for _, r in ipairs(runs) do
    local parent = val(r.parent)
    if parent then
      children[parent] = children[parent] or {}
      table.insert(children[parent], 1, r) -- oldest child first
    else
      table.insert(top, r)
    end
  end
  local seen = {}
  local function add(r)
    if seen[r.runId] then
      return
    end
    seen[r.runId] = true
    table.insert(out, r)
    for _, c in ipairs(children[r.runId] or {}) do
      add(c)
    end
  end
  for _, r in ipairs(top) do
    add(r)
  end
  for _, r in ipairs(runs) do -- a child whose parent is not listed
    add(r)
  end
  return out
end

--- What the picker offers for one run.
function M.run_actions(r)
  local actions = { "show report", "diff", "accept", "discard", "plan", "log" }
  if r.status == "running" or r.status == "queued" then
    table.insert(actions, "cancel")
  end
  return actions
end

function M.act(action, id)
  if action == "show report" then
    return M.show(id)
  elseif action == "plan" then
    return M.plan(id)
  elseif action == "log" then
    return M.log({ runId = id })
  end
  return M[action](id)
end

--- :NexusRuns — a vim.ui.select picker of the runs, then of what to do with the one chosen.
--- `callback(err, runs)` instead gets the list.
function M.runs(callback)
  M.execute("nexus.runs", vim.empty_dict(), callback or reporting(function(runs)
    if #runs == 0 then
      return notify("no runs yet; :NexusRun {task} starts one")
    end
    vim.ui.select(as_tree(runs), {
      prompt = "NEXUS runs",
      kind = "nexus_runs",
      format_item = M.format_run,
    }, function(run)
      if not run then
        return
      end
      vim.ui.select(M.run_actions(run), {
        prompt = ("NEXUS run %s (%s)"):format(run.runId, run.status),
        kind = "nexus_run_action",
      }, function(action)
        if action then
          M.act(action, run.runId)
        end
      end)
    end)
  end))
end

-- The full id of a run this session knows for a prefix of it, else the prefix.
local function known_id(prefix)
  local found
  for id in pairs(M.events) do
    if vim.startswith(id, prefix) then
      if found then
        return prefix
      end
      found = id
    end
  end
  return found or prefix
end

--- :NexusDiff — the run's net diff in a split.
local function show_diff(text, id)
  id = known_id(id)
  if text == "" then
    return notify(("run %s changed nothing"):format(id))
  end
  local buf = scratch("nexus://diff/" .. id, split_lines(text), "diff")
  show(buf, "botright vsplit")
end

-- Commands on one run: `M.diff(id, callback?)`, `M.accept(...)`, and so on.
local ON_RUN = {
  diff = { "nexus.diff", show_diff },
  accept = {
    "nexus.accept",
    function(r)
      vim.cmd.checktime() -- files of the working tree no buffer showed
      notify(("run %s accepted: %d file(s) changed: %s"):format(
        r.runId,
        #r.files,
        table.concat(r.files, ", ")
      ))
    end,
  },
  discard = {
    "nexus.discard",
    function(r)
      notify(("run %s discarded"):format(r.runId))
    end,
  },
  show = { "nexus.show", function() end }, -- the server opens the report (window/showDocument)
  cancel = {
    "nexus.cancel",
    function(r)
      notify(("cancelling run %s"):format(r.runId))
    end,
  },
}
for name, spec in pairs(ON_RUN) do
  M[name] = function(id, callback)
    M.execute(spec[1], { runId = id }, callback or reporting(function(result)
      spec[2](result, id)
    end))
  end
end

--- :NexusCancel without a run: the run of this session in progress (a picker if several).
function M.cancel_running()
  local ids = vim.tbl_keys(M.running)
  table.sort(ids)
  if #ids == 0 then
    return notify("no run of this session is running")
  elseif #ids == 1 then
    return M.cancel(ids[1])
  end
  vim.ui.select(ids, {
    prompt = "NEXUS: cancel which run?",
    kind = "nexus_cancel",
    format_item = function(id)
      return id .. "  " .. (M.running[id].task or "")
    end,
  }, function(id)
    if id then
      M.cancel(id)
    end
  end)
end

local LOG_KEYS = { level = "level", category = "category", run = "runId", since = "since", limit = "limit" }

--- `:NexusLog` arguments: `key=value` words (level, category, run, since, limit), the rest
--- is the text searched for.
function M.parse_log_query(args)
  local filter, words = {}, {}
  for _, word in ipairs(vim.split(args or "", "%s+", { trimempty = true })) do
    local key, value = word:match("^(%a+)=(.+)$")
    if key and LOG_KEYS[key] then
      filter[LOG_KEYS[key]] = key == "limit" and tonumber(value) or value
    else
      table.insert(words, word)
    end
  end
  if #words > 0 then
    filter.grep = table.concat(words, " ")
  end
  filter.limit = filter.limit or 500
  return filter
end

--- :NexusLog — the journal's events matching `filter` in the buffer `nexus://log`.
function M.log(filter, callback)
  filter = type(filter) == "string" and M.parse_log_query(filter) or filter or {}
  M.execute("nexus.log", filter, callback or reporting(function(events)
    local shown = {}
    for key, value in pairs(filter) do
      table.insert(shown, key .. "=" .. tostring(value))
    end
    table.sort(shown)
    local lines = {
      ("NEXUS log (%s): %d event(s), oldest first"):format(table.concat(shown, " "), #events),
    }
    for _, event in ipairs(events) do
      vim.list_extend(lines, M.format_event(event))
    end
    show(scratch("nexus://log", lines, "nexuslog"))
  end))
end

-- :NexusPlan ----------------------------------------------------------------------------------

local MARKS = { done = "[x]", in_progress = "[>]", pending = "[ ]" }

--- The plan view's lines for a run.
function M.plan_lines(id, plan)
  if not plan then
    return { ("NEXUS plan of run %s: no plan yet"):format(id) }
  end
  local status = M.ended[id] and (", run " .. M.ended[id]) or (M.running[id] and ", running" or "")
  local lines = {
    ("NEXUS plan of run %s: %d/%d done (from the %s%s)"):format(
      id,
      plan.done or 0,
      plan.total or #plan.plan,
      plan.source or "model",
      status
    ),
  }
  for _, step in ipairs(plan.plan) do
    table.insert(lines, ("%s %s"):format(MARKS[step.status] or "[?]", step.text))
  end
  return lines
end

local function latest_run()
  local best
  for _, set in ipairs({ M.running, M.plans, M.events }) do
    for id in pairs(set) do
      if not best or id > best then
        best = id
      end
    end
    if best then
      return best
    end
  end
end

--- :NexusPlan [run] — the run's latest plan in the buffer `nexus://plan`, kept up to date
--- while the run goes on. Without a run: the newest run of this session.
function M.plan(id, callback)
  id = (id ~= nil and id ~= "") and id or latest_run()
  if not id then
    return notify("no run yet in this session; :NexusPlan {run}")
  end
  local function draw(plan)
    local buf = scratch("nexus://plan", M.plan_lines(id, plan), "nexusplan")
    plan_views = { [id] = true }
    if vim.fn.bufwinid(buf) == -1 then
      show(buf, "botright 8split")
    end
    if callback then
      callback(nil, plan)
    end
  end
  if M.plans[id] then
    return draw(M.plans[id])
  end
  -- A run of another session (or a prefix): its plan events from the journal.
  M.execute("nexus.log", { runId = id, category = "agent" }, reporting(function(events)
    local plan
    for _, event in ipairs(events) do
      if type(val(event.data)) == "table" and type(event.data.plan) == "table" then
        plan, id = event.data, event.run
      end
    end
    if plan then
      M.plans[id] = plan
    end
    draw(plan)
  end))
end

-- :NexusMemory --------------------------------------------------------------------------------

--- One lesson as a line of the memory view.
function M.format_lesson(l)
  local tags = type(l.tags) == "table" and #l.tags > 0 and (" [" .. table.concat(l.tags, ", ") .. "]")
    or ""
  local strength = tonumber(val(l.strength) or val(l.weight))
  return ("%-4s %s%s  %s"):format(
    l.id,
    strength and ("%.2f"):format(strength) or "-",
    tags,
    val(l.line) or l.text
  )
end

local function memory_view(lessons, title)
  local lines = { title, "(a: add a lesson, x: forget the lesson under the cursor, r: refresh)" }
  for _, lesson in ipairs(lessons) do
    table.insert(lines, M.format_lesson(lesson))
  end
  if #lessons == 0 then
    table.insert(lines, "(no lessons yet)")
  end
  local buf = scratch("nexus://memory", lines, "nexusmemory")
  local function map(key, fn, desc)
    vim.keymap.set("n", key, fn, { buffer = buf, nowait = true, desc = "NEXUS: " .. desc })
  end
  map("r", function()
    M.memory("list")
  end, "refresh")
  map("a", function()
    vim.ui.input({ prompt = "NEXUS lesson: " }, function(text)
      if text and text ~= "" then
        M.memory("add " .. text)
      end
    end)
  end, "add a lesson")
  map("x", function()
    local lesson = vim.api.nvim_get_current_line():match("^(L%d+)%s")
    if lesson then
      M.memory("forget " .. lesson)
    end
  end, "forget the lesson under the cursor")
  return show(buf)
end

--- :NexusMemory [list | add {text} | forget {id} | show {id} | recall {query}]: the workspace's
--- memory in the buffer `nexus://memory`; add and forget show the list again after.
function M.memory(args, callback)
  local action, rest = (args or ""):match("^%s*(%S*)%s*(.-)%s*$")
  action = action ~= "" and action or "list"
  local arg = { action = action }
  if action == "add" then
    arg.text = rest
  elseif action == "recall" then
    arg.query = rest
  elseif action == "forget" or action == "show" then
    arg.id = rest
  end
  M.execute("nexus.memory", arg, callback or reporting(function(result)
    if action == "list" then
      memory_view(result, ("NEXUS memory: %d lesson(s)"):format(#result))
    elseif action == "recall" then
      memory_view(result, ("NEXUS memory recalled for %q: %d lesson(s)"):format(rest, #result))
    elseif action == "show" then
      local lines, keys = { "NEXUS lesson " .. result.id }, vim.tbl_keys(result)
      table.sort(keys)
      for _, key in ipairs(keys) do
        table.insert(lines, ("%s: %s"):format(key, vim.inspect(val(result[key]))))
      end
      show(scratch("nexus://memory/" .. result.id, lines))
    else
      local did = action == "add" and (result.new == false and "confirmed" or "added") or "forgot"
      notify(("%s %s: %s"):format(did, result.id, result.text))
      M.memory("list")
    end
  end))
end

--- Run ids for command-line completion: those seen in events and those the server lists.
function M.complete(prefix)
  local ids = vim.tbl_keys(M.events)
  local client = M.client()
  if client then
    local params = { command = "nexus.runs", arguments = { vim.empty_dict() } }
    local reply = client:request_sync("workspace/executeCommand", params, 1000, 0)
    for _, r in ipairs(reply and type(reply.result) == "table" and reply.result or {}) do
      table.insert(ids, r.runId)
    end
  end
  ids = vim.tbl_filter(function(id)
    return vim.startswith(id, prefix or "")
  end, vim.fn.uniq(vim.fn.sort(ids)))
  return vim.fn.reverse(ids)
end

--- Settings of setup's options: `settings = {...}` and known setting keys at the top level.
local function settings_of(opts)
  local settings = vim.deepcopy(opts.settings or {})
  for key, value in pairs(opts) do
    if IS_SETTING[key] then
      settings[key] = value
    end
  end
  return settings
end

function M.setup(opts)
  opts = opts or {}
  if vim.fn.has("nvim-0.11") == 0 then
    return notify("the NEXUS plugin needs Neovim 0.11 or newer", vim.log.levels.ERROR)
  end
  local settings = vim.tbl_extend("force", M.config.settings, settings_of(opts))
  for key in pairs(opts) do
    if M.config[key] ~= nil and key ~= "settings" then
      M.config[key] = opts[key] -- a list (cmd) is replaced, not merged
    end
  end
  M.config.settings = settings
  M.did_setup = true
  vim.lsp.config("nexus", M.lsp_config())
  vim.lsp.enable("nexus", M.config.autostart)
  local group = vim.api.nvim_create_augroup("nexus", { clear = true })
  vim.api.nvim_create_autocmd("LspProgress", { group = group, callback = on_progress })
  -- Running clients get the new settings (the server applies them to the next run).
  for _, client in ipairs(vim.lsp.get_clients({ name = "nexus" })) do
    client.settings = { nexus = settings }
    client:notify("workspace/didChangeConfiguration", { settings = client.settings })
  end
  if M.config.autostart then
    -- vim.lsp.enable attaches on FileType; a file with no filetype is started here.
    vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
      group = group,
      callback = function(ev)
        vim.schedule(function()
          if is_file(ev.buf) and vim.bo[ev.buf].filetype == "" then
            M.start(ev.buf)
          end
        end)
      end,
    })
  end
end

return M

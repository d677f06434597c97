-- NEXUS for Neovim: starts `nexus-ls` for buffers in a git repository and wraps its commands.
-- The server does the work; this file only starts it, forwards commands and shows what it says.
local M = {}

M.config = {
  cmd = { "nexus-ls" },
  -- The `nexus` settings (baseUrl, model, maxSteps, ...), sent as initializationOptions and
  -- answered to workspace/configuration.
  settings = {},
  -- `nexus/event`s at this level or above are shown with vim.notify.
  notify_level = vim.log.levels.INFO,
  -- Start the server for every file buffer inside a git repository.
  autostart = true,
}

--- runId -> the `nexus/event`s received for it, in order.
M.events = {}
--- runId -> how the run ended (succeeded, failed, cancelled, interrupted), once it has.
M.ended = {}

local started = {} -- ids of the clients M.start made
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

-- Client methods became `client:method()` in Neovim 0.11; 0.10 has `client.method()`.
local function call(client, method, ...)
  if vim.fn.has("nvim-0.11") == 1 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local function is_file(bufnr)
  return vim.bo[bufnr].buftype == "" and vim.api.nvim_buf_get_name(bufnr) ~= ""
end

local function on_event(_, params)
  local id, event = params.runId or "?", params.event or {}
  M.events[id] = M.events[id] or {}
  table.insert(M.events[id], event)
  -- A run's end is the run/error event whose data holds the agent's exit code
  -- (RunEndData in nexus_ls/journal/shapes.py), not a pattern on its message.
  local data = type(event.data) == "table" and event.data or {}
  local status = (event.category == "run" or event.category == "error")
    and type(data.exit_code) == "number"
    and data.status
  if status and END_STATUSES[status] then
    M.ended[id] = status
  end
  local level = LEVELS[event.level] or vim.log.levels.INFO
  if level >= M.config.notify_level then
    notify(("%s: %s"):format(id, event.message or ""), level)
  end
  vim.api.nvim_exec_autocmds("User", { pattern = "NexusEvent", data = params, modeline = false })
end

local function on_progress(ev)
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  local value = ev.data.params.value
  if client and client.name == "nexus" and type(value) == "table" then
    local text = value.message or value.title or ""
    vim.api.nvim_echo({ { "NEXUS " .. value.kind .. ": " .. text } }, false, {})
  end
end

--- Starts (or reuses) the NEXUS client for `bufnr`'s git repository.
--- @param bufnr? integer
--- @param overrides? table fields of the vim.lsp.start config, e.g. root_dir
--- @return integer? client_id
function M.start(bufnr, overrides)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local config = vim.tbl_extend("force", {
    name = "nexus",
    cmd = M.config.cmd,
    root_dir = vim.fs.root(bufnr, ".git"),
    init_options = { nexus = next(M.config.settings) and M.config.settings or vim.empty_dict() },
    settings = next(M.config.settings) and { nexus = M.config.settings } or nil,
    handlers = { ["nexus/event"] = on_event },
  }, overrides or {})
  if not config.root_dir then
    return nil
  end
  local id = vim.lsp.start(config, { bufnr = bufnr })
  if id then
    started[id] = true
  end
  return id
end

--- The NEXUS client attached to `bufnr` (default: current), else any running one; it may
--- still be initializing (vim.lsp.get_clients lists only initialized clients).
--- @return vim.lsp.Client?
function M.client(bufnr)
  if not bufnr or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local any
  for id in pairs(started) do
    local client = vim.lsp.get_client_by_id(id)
    if not client then
      started[id] = nil
    elseif client.attached_buffers[bufnr] then
      return client
    else
      any = any or client
    end
  end
  return any
end

--- Runs a NEXUS command (`workspace/executeCommand` with one object argument).
--- `callback(err, result)` defaults to reporting errors; results are then dropped.
function M.execute(command, arg, callback, bufnr)
  local client = M.client(bufnr)
  if not client then
    return notify("no nexus-ls running; open a file inside a git repository", vim.log.levels.ERROR)
  end
  vim.wait(10000, function()
    return client.initialized
  end, 20)
  callback = callback
    or function(err)
      if err then
        notify(err.message, vim.log.levels.ERROR)
      end
    end
  local params = { command = command, arguments = { arg } }
  call(client, "request", "workspace/executeCommand", params, callback, bufnr or 0)
end

local function reporting(on_result)
  return function(err, result)
    if err then
      return notify(err.message, vim.log.levels.ERROR)
    end
    on_result(result)
  end
end

--- Starts a run. `opts.bufnr` with `opts.line1`/`opts.line2` (1-based) sends that selection.
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
  M.execute("nexus.run", arg, callback or reporting(function(r)
    notify(("run %s started on %s"):format(r.runId, r.branch))
  end), bufnr)
end

--- Lists runs, newest first: `callback(err, runs)`; by default shows them.
function M.runs(callback)
  M.execute("nexus.runs", vim.empty_dict(), callback or reporting(function(runs)
    local lines = { "runs:" }
    for _, r in ipairs(runs) do
      local review = type(r.review) == "string" and r.review or ""
      table.insert(lines, ("%s  %-11s %-8s %s"):format(r.runId, r.status, review, r.task))
    end
    notify(#runs > 0 and table.concat(lines, "\n") or "no runs yet")
  end))
end

local function show_diff(text, id)
  if text == "" then
    return notify(("run %s changed nothing"):format(id))
  end
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(text, "\n", { trimempty = true }))
  vim.bo[buf].buftype, vim.bo[buf].bufhidden = "nofile", "wipe"
  vim.bo[buf].filetype, vim.bo[buf].modifiable = "diff", false
  pcall(vim.api.nvim_buf_set_name, buf, "nexus://diff/" .. id)
end

-- Commands on one run: `M.diff(id, callback?)`, `M.accept(...)`, and so on.
local ON_RUN = {
  diff = { "nexus.diff", show_diff },
  accept = {
    "nexus.accept",
    function(r)
      notify(("run %s accepted: %d file(s) changed"):format(r.runId, #r.files))
    end,
  },
  discard = {
    "nexus.discard",
    function(r)
      notify(("run %s discarded"):format(r.runId))
    end,
  },
  show = { "nexus.show", function() end }, -- the server opens the report itself
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

--- Run ids for command-line completion: those seen in events and those the server lists.
function M.complete(prefix)
  local ids = vim.tbl_keys(M.events)
  local client = M.client()
  if client then
    local params = { command = "nexus.runs", arguments = { vim.empty_dict() } }
    local reply = call(client, "request_sync", "workspace/executeCommand", params, 1000, 0)
    for _, r in ipairs(reply and type(reply.result) == "table" and reply.result or {}) do
      table.insert(ids, r.runId)
    end
  end
  ids = vim.tbl_filter(function(id)
    return vim.startswith(id, prefix)
  end, vim.fn.uniq(vim.fn.sort(ids)))
  return vim.fn.reverse(ids)
end

function M.setup(opts)
  opts = opts or {}
  M.config = vim.tbl_deep_extend("force", M.config, opts)
  M.config.cmd = opts.cmd or M.config.cmd -- a list is replaced, not merged
  local group = vim.api.nvim_create_augroup("nexus", { clear = true })
  vim.api.nvim_create_autocmd("LspProgress", { group = group, callback = on_progress })
  if M.config.autostart then
    vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
      group = group,
      callback = function(ev)
        if is_file(ev.buf) then
          M.start(ev.buf)
        end
      end,
    })
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and is_file(buf) then
        M.start(buf)
      end
    end
  end
end

return M

-- Drives nexus-ls through the NEXUS Neovim plugin, as a user's editor would, and writes what it
-- observed as JSON to params.out. Parameters arrive in _G.params: repo, cmd, base_url, out.
local p = _G.params
local observed = { notifications = {}, progress = {} }

local function wait(ms, what, done)
  if not vim.wait(ms, done, 20) then
    error("timed out waiting for " .. what)
  end
end

-- Calls an async plugin function whose last argument is an LSP-style callback(err, result).
local function await(what, fn, ...)
  local reply
  local args = { ... }
  table.insert(args, function(err, result)
    reply = { err = err, result = result }
  end)
  fn(unpack(args))
  wait(10000, what, function()
    return reply ~= nil
  end)
  if reply.err then
    error(what .. " failed: " .. vim.inspect(reply.err))
  end
  return reply.result
end

local function notified(pattern)
  for _, n in ipairs(observed.notifications) do
    if n.msg:find(pattern, 1, true) then
      return n.msg
    end
  end
end

local function main()
  vim.notify = function(msg, level)
    table.insert(observed.notifications, { msg = msg, level = level })
  end
  vim.cmd.runtime("plugin/nexus.lua")
  local nexus = require("nexus")
  nexus.setup({ cmd = p.cmd, settings = { baseUrl = p.base_url, maxSteps = 10 } })
  vim.api.nvim_create_autocmd("LspProgress", {
    callback = function(ev)
      table.insert(observed.progress, ev.data.params.value.kind)
    end,
  })

  vim.cmd.edit(p.repo .. "/calc.py") -- autostart attaches the client to this buffer
  local client = assert(nexus.client(), "the plugin started no client")
  observed.root_dir = client.root_dir

  local started = await("nexus.run", nexus.run, "fix the failing test", { line1 = 1, line2 = 2 })
  local id = started.runId
  observed.run_id, observed.branch = id, started.branch
  wait(30000, "the run to end", function()
    return nexus.ended[id] ~= nil
  end)
  observed.status = nexus.ended[id]
  wait(5000, "the run's progress to end", function()
    return observed.progress[#observed.progress] == "end"
  end)
  observed.events = #nexus.events[id]
  observed.diff = await("nexus.diff", nexus.diff, id)
  observed.runs = await("nexus.runs", nexus.runs)

  vim.cmd("NexusRuns")
  wait(5000, ":NexusRuns", function()
    return notified("runs:") ~= nil
  end)
  observed.runs_listing = notified("runs:")

  vim.cmd("NexusDiff " .. id)
  wait(5000, ":NexusDiff", function()
    return vim.bo.filetype == "diff"
  end)
  observed.diff_buffer = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")

  vim.cmd("NexusShow " .. id) -- the server asks the editor to open the report
  wait(5000, ":NexusShow", function()
    return vim.endswith(vim.api.nvim_buf_get_name(0), id .. ".md")
  end)
  observed.report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")

  vim.cmd("NexusAccept " .. id) -- calc.py is open: its buffer is updated too
  wait(5000, ":NexusAccept", function()
    return notified("run " .. id .. " accepted") ~= nil -- the command's answer, not the event
  end)
  observed.accepted = notified("run " .. id .. " accepted")
  local calc = vim.fn.bufnr(p.repo .. "/calc.py")
  observed.calc_buffer = table.concat(vim.api.nvim_buf_get_lines(calc, 0, -1, false), "\n")
end

local ok, err = xpcall(main, debug.traceback)
observed.error = not ok and err or nil
local file = assert(io.open(p.out, "w"))
file:write(vim.json.encode(observed))
file:close()
vim.cmd(ok and "qa!" or "cquit 1")

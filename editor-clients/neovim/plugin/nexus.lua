-- User commands for NEXUS; the module loads on first use. Call require("nexus").setup{} to
-- start the server automatically for files in git repositories.
if vim.g.loaded_nexus then
  return
end
vim.g.loaded_nexus = true

local command = vim.api.nvim_create_user_command

command("NexusRun", function(o)
  local opts = { bufnr = vim.api.nvim_get_current_buf() }
  if o.range > 0 then
    opts.line1, opts.line2 = o.line1, o.line2
  end
  require("nexus").run(o.args, opts)
end, { nargs = "+", range = true, desc = "NEXUS: start an agent run on the task (and selection)" })

command("NexusRuns", function()
  require("nexus").runs()
end, { nargs = 0, desc = "NEXUS: list runs, newest first" })

local function complete(prefix)
  return require("nexus").complete(prefix)
end

for name, desc in pairs({
  Diff = "show a run's net diff",
  Accept = "merge a run's change into the working tree",
  Discard = "remove a run's worktree and branch",
  Show = "open a run's report",
  Cancel = "stop a running run",
}) do
  command("Nexus" .. name, function(o)
    require("nexus")[name:lower()](o.args)
  end, { nargs = 1, complete = complete, desc = "NEXUS: " .. desc })
end

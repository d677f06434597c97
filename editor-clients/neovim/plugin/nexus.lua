-- User commands for NEXUS; the module loads on first use. Call require("nexus").setup{} to
-- start the server automatically for files in git repositories.
if vim.g.loaded_nexus then
  return
end
vim.g.loaded_nexus = true

local command = vim.api.nvim_create_user_command

local function nexus()
  return require("nexus")
end

local function complete(prefix)
  return nexus().complete(prefix)
end

command("NexusRun", function(o)
  local opts = { bufnr = vim.api.nvim_get_current_buf() }
  if o.range > 0 then
    opts.line1, opts.line2 = o.line1, o.line2
  end
  if o.args ~= "" then
    return nexus().run(o.args, opts)
  end
  vim.ui.input({ prompt = "NEXUS task: " }, function(task)
    if task and task ~= "" then
      nexus().run(task, opts)
    end
  end)
end, {
  nargs = "*",
  range = true,
  desc = "NEXUS: start an agent on the task (with the selected lines when given a range)",
})

command("NexusRuns", function()
  nexus().runs()
end, { nargs = 0, desc = "NEXUS: pick a run, then show its report, diff, accept or discard it" })

command("NexusCancel", function(o)
  if o.args == "" then
    return nexus().cancel_running()
  end
  nexus().cancel(o.args)
end, { nargs = "?", complete = complete, desc = "NEXUS: stop a run (default: the one running)" })

command("NexusLog", function(o)
  nexus().log(o.args)
end, {
  nargs = "*",
  desc = "NEXUS: search the journal (text, level=, category=, run=, since=, limit=)",
})

command("NexusEvents", function()
  nexus().open_log()
end, { nargs = 0, desc = "NEXUS: open the log of the events of this session's runs" })

command("NexusPlan", function(o)
  nexus().plan(o.args)
end, { nargs = "?", complete = complete, desc = "NEXUS: a run's plan (default: the newest)" })

command("NexusMemory", function(o)
  nexus().memory(o.args)
end, {
  nargs = "*",
  complete = function(prefix, line)
    if #vim.split(line, "%s+") <= 2 then
      return vim.tbl_filter(function(a)
        return vim.startswith(a, prefix)
      end, { "list", "add", "forget", "show", "recall" })
    end
    return {}
  end,
  desc = "NEXUS: the workspace's memory (list, add {text}, forget {id}, show {id}, recall {query})",
})

for name, desc in pairs({
  Diff = "open a run's net diff in a split",
  Accept = "merge a run's change into the working tree",
  Discard = "remove a run's worktree and branch",
  Show = "open a run's report",
}) do
  command("Nexus" .. name, function(o)
    nexus()[name:lower()](o.args)
  end, { nargs = 1, complete = complete, desc = "NEXUS: " .. desc })
end

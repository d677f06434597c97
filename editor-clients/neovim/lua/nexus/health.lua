-- :checkhealth nexus — is the server found, which model is configured, which sandbox is in force.
local M = {}

local function env(name)
  local value = vim.env[name]
  return value ~= nil and value ~= "" and value or nil
end

function M.check()
  local health = vim.health
  local nexus = require("nexus")
  local config, settings = nexus.config, nexus.config.settings

  health.start("NEXUS server")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.11") == 1 then
    health.ok("Neovim " .. version)
  else
    health.error("Neovim " .. version .. ": the plugin needs 0.11 or newer (vim.lsp.config)")
  end
  local exe = vim.fn.exepath(config.cmd[1])
  local command = table.concat(config.cmd, " ")
  if exe ~= "" then
    local how = (#config.cmd > 1 or config.cmd[1] ~= exe) and (" (command: " .. command .. ")") or ""
    health.ok(("nexus-ls found: %s%s"):format(exe, how))
  else
    health.error(("nexus-ls not found: %s is not an executable"):format(config.cmd[1]), {
      "install NEXUS (python3 -m pip install -e . in the NEXUS repository) so nexus-ls is on PATH",
      'or set cmd = { "python3", "-m", "nexus_ls.cli", "serve" } in setup{}',
    })
  end
  if not nexus.did_setup then
    health.warn('require("nexus").setup{} was not called; the settings below are the defaults')
  end
  local clients = vim.lsp.get_clients({ name = "nexus" })
  if #clients == 0 then
    health.info("no nexus-ls running yet: it starts for a file inside a git repository")
  end
  for _, client in ipairs(clients) do
    local info = client.server_info or {}
    health.ok(("nexus-ls running for %s (client %d, %s %s)"):format(
      client.root_dir or "?",
      client.id,
      info.name or "server",
      info.version or ""
    ))
  end
  local unknown = {}
  for key in pairs(settings) do
    if not vim.tbl_contains(nexus.SETTINGS, key) then
      table.insert(unknown, key)
    end
  end
  if #unknown > 0 then
    table.sort(unknown)
    health.warn("unknown settings (the server ignores them): " .. table.concat(unknown, ", "))
  end

  health.start("NEXUS model")
  local chosen = {}
  for _, key in ipairs({ "model", "baseUrl", "localModel", "toolMode", "guided" }) do
    if settings[key] ~= nil then
      table.insert(chosen, ("%s = %s"):format(key, vim.inspect(settings[key])))
    end
  end
  if #chosen > 0 then
    health.ok("model configured: " .. table.concat(chosen, ", "))
  else
    local from_env = {}
    for _, name in ipairs({ "OPENAI_BASE_URL", "NEXUS_MODEL", "NEXUS_LOCAL_MODEL" }) do
      if env(name) then
        table.insert(from_env, name .. "=" .. env(name))
      end
    end
    if #from_env > 0 then
      health.ok("model configured by the environment: " .. table.concat(from_env, ", "))
    else
      health.info(
        "no model configured: the server tries a loopback server, then NEXUS_LOCAL_MODEL, then its "
          .. "bundled model (far too small for real work); set baseUrl and model in setup{}"
      )
    end
  end
  if nexus.last_model then
    health.ok(("model in use: %s (run %s)"):format(nexus.last_model.name, nexus.last_model.runId))
  end
  if env("OPENAI_API_KEY") then
    health.info("OPENAI_API_KEY is set in Neovim's environment (the server reads it there)")
  end

  health.start("NEXUS sandbox")
  local sandbox = nexus.last_sandbox
  if sandbox then
    local say = ("sandbox in force: %s (run %s)"):format(sandbox.message, sandbox.runId)
    if sandbox.mode == "off" then
      health.warn(say, { "set sandbox = \"auto\" (the default) so commands are confined" })
    else
      health.ok(say)
    end
  end
  local setting = settings.sandbox or env("NEXUS_SANDBOX")
  local source = settings.sandbox and "setting" or (env("NEXUS_SANDBOX") and "NEXUS_SANDBOX" or nil)
  local bwrap = vim.fn.exepath("bwrap")
  local found = bwrap ~= "" and ("; bwrap on PATH: " .. bwrap) or ""
  if source then
    local say = ("sandbox %s = %s%s"):format(source, setting, found)
    if setting == "off" then
      health.warn(say .. ": commands run unconfined")
    else
      health.ok(say)
    end
  elseif not sandbox then
    health.info(("sandbox auto (or your policy file's): bubblewrap where it works, else Landlock%s; "
      .. "no run yet: a run's first event says which sandbox is in force"):format(found))
  end
  if settings.network then
    health.warn("network = true: every command of a run gets the network")
  end
end

return M

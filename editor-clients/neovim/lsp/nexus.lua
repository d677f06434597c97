-- `vim.lsp.enable("nexus")` works without setup{} too: Neovim 0.11 reads this file for the
-- config named "nexus" (settings then come from the server's environment).
return require("nexus").lsp_config()

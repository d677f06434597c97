"""Where the language model comes from: settings, a local server, a GGUF, the bundled model."""

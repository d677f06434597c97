/**
 * What the extension sends the server as settings, and how it starts the server.
 * Pure functions of the `nexus` configuration object, so they are tested without VS Code.
 */

/** The server's settings (docs/lsp.md#settings): anything else is the extension's own. */
export const SERVER_KEYS = [
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
] as const;

export type ServerKey = (typeof SERVER_KEYS)[number];
export type ServerSettings = Partial<Record<ServerKey, string | number | boolean>>;

/** The configuration as VS Code hands it over: any JSON under the `nexus` section. */
export type Configuration = Readonly<Record<string, unknown>>;

/**
 * The server's keys that have a value. VS Code reports every declared key, `null`
 * where the user set nothing; leaving those out keeps the server's own defaults (which
 * may come from its environment), and leaving `server.*` out keeps the server from
 * warning about keys it does not know.
 */
export function serverSettings(config: Configuration): ServerSettings {
  const out: ServerSettings = {};
  for (const key of SERVER_KEYS) {
    const value = config[key];
    if (value === null || value === undefined || value === "") {
      continue;
    }
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      out[key] = value;
    }
  }
  return out;
}

/**
 * The answer to `workspace/configuration`: the `nexus` section mapped as above, any other
 * section as VS Code answered it (`answered`), or null.
 */
export function configurationAnswer(
  items: ReadonlyArray<{ section?: string }>,
  answered: readonly unknown[],
  nexus: Configuration,
): unknown[] {
  return items.map((item, i) =>
    item.section === "nexus" ? serverSettings(nexus) : (answered[i] ?? null),
  );
}

export interface ServerExecutable {
  command: string;
  args: string[];
}

/**
 * How to start `nexus-ls`: `nexus.server.command` when the user gave one, else
 * `<python> -m nexus_ls` for a configured interpreter, else `nexus-ls` from PATH.
 */
export function serverExecutable(config: Configuration): ServerExecutable {
  const server = (config.server ?? {}) as Record<string, unknown>;
  const command = server.command;
  if (Array.isArray(command) && command.length > 0) {
    const words = command.map(String);
    if (words[0].trim() === "") {
      throw new Error("nexus.server.command must start with a program to run");
    }
    return { command: words[0], args: words.slice(1) };
  }
  if (typeof command === "string" && command.trim() !== "") {
    return { command: command.trim(), args: [] };
  }
  const python = server.python;
  if (typeof python === "string" && python.trim() !== "") {
    return { command: python.trim(), args: ["-m", "nexus_ls"] };
  }
  return { command: "nexus-ls", args: [] };
}

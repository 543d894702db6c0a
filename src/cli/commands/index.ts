/**
 * The table of subcommands. Adding one: write commands/<name>.ts exporting
 * a `Command`, and add one line here. Modules load on use, so a command's
 * dependencies cost nothing to the others.
 */
import type { Command } from '../command.js';

/** Every subcommand by name, loaded on first use. */
export const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  digest: async () => (await import('./digest.js')).digestCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  mkfs: async () => (await import('./image.js')).mkfsCommand,
  put: async () => (await import('./image.js')).putCommand,
  get: async () => (await import('./image.js')).getCommand,
  ls: async () => (await import('./image.js')).lsCommand,
  rm: async () => (await import('./image.js')).rmCommand,
  enable: async () => (await import('./image.js')).enableCommand,
  measure: async () => (await import('./image.js')).measureCommand,
  dump: async () => (await import('./image.js')).dumpCommand,
  sign: async () => (await import('./sign.js')).signCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  cat: async () => (await import('./verify.js')).catCommand,
  mount: async () => (await import('./mount.js')).mountCommand,
  veritysetup: async () => (await import('./veritysetup.js')).veritysetupCommand,
};

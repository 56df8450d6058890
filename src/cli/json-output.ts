/**
 * One JSON envelope for every command's --json output (README "JSON output"):
 * `{ "formatVersion": "1.0", "command": "<name>", ...the command's fields }`. formatVersion is the
 * plan's (src/plan/plan-json.ts): "MAJOR.MINOR", a minor bump only adds fields.
 */
import { PLAN_FORMAT_VERSION } from '../plan/plan-json.js';
import type { CliIo } from './io.js';

export const JSON_FORMAT_VERSION = PLAN_FORMAT_VERSION;

export function jsonEnvelope(command: string, body: Readonly<Record<string, unknown>>): string {
  const { formatVersion: _ignored, command: _alsoIgnored, ...rest } = body;
  return `${JSON.stringify({ formatVersion: JSON_FORMAT_VERSION, command, ...rest }, null, 2)}\n`;
}

export function writeJson(io: CliIo, command: string, body: Readonly<Record<string, unknown>>): void {
  io.stdout.write(jsonEnvelope(command, body));
}

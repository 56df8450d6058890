/**
 * Help screens, generated from the command definitions the parser uses (commands.ts): the main
 * usage (visible commands only) and `pgbk CMD --help` / `pgbk help CMD` with every option.
 */
import { COMMANDS, GLOBAL_OPTIONS, findCommand, type CommandDef, type OptionDef, type OptionDefs } from './commands.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { PgbkError } from '../errors.js';
import { closest } from './suggest.js';
import { parseCommand } from './options.js';

const WIDTH = 100;

/** Wrap text to WIDTH, indenting continuation lines by `indent` columns. */
function wrap(text: string, first: string, indent: number): string {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const lines: string[] = [];
  let line = first;
  for (const w of words) {
    if (line.length + 1 + w.length > WIDTH && line.trim() !== '' && line.length > indent) {
      lines.push(line);
      line = ' '.repeat(indent) + w;
    } else {
      line += (line.length === 0 || line.endsWith(' ') ? '' : ' ') + w;
    }
  }
  lines.push(line);
  return lines.join('\n');
}

function flagLabel(name: string, o: OptionDef): string {
  const long = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  return o.short === undefined ? `    ${long}` : `-${o.short}, ${long}`;
}

function optionLines(options: OptionDefs): string[] {
  const entries = Object.entries(options);
  const width = Math.min(38, Math.max(...entries.map(([n, o]) => flagLabel(n, o).length)) + 2);
  return entries.map(([n, o]) => {
    const label = `  ${flagLabel(n, o)}`;
    const extra = [o.multiple === true ? 'repeatable' : '', o.type === 'string' && typeof o.default === 'string' ? `default ${o.default}` : '']
      .filter((x) => x !== '')
      .join(', ');
    const help = `${o.help}${extra === '' ? '' : ` (${extra})`}`;
    if (label.length + 2 > width + 2) return `${label}\n${wrap(help, ' '.repeat(width + 2), width + 2)}`;
    return wrap(help, label.padEnd(width + 2), width + 2);
  });
}

export function renderUsage(): string {
  const visible = COMMANDS.filter((c) => c.hidden !== true);
  const width = Math.max(...visible.map((c) => `${c.name} ${c.args}`.trimEnd().length)) + 2;
  const lines = visible.map((c) => wrap(c.summary, `  ${`${c.name} ${c.args}`.trimEnd().padEnd(width)}`, width + 2));
  return [
    'usage: pgbk [--config FILE] <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Run pgbk COMMAND --help (or pgbk help COMMAND) for the options of a command; pgbk --version for the version.',
    '',
  ].join('\n');
}

export function renderCommandHelp(def: CommandDef): string {
  const lines = [
    `usage: pgbk ${def.name}${def.args === '' ? '' : ` ${def.args}`}${Object.keys(def.options).length > 0 ? ' [options]' : ''}`,
    '',
    wrap(`${def.summary}.`, '', 0),
  ];
  if (def.description !== undefined) lines.push('', wrap(def.description, '', 0));
  if (Object.keys(def.options).length > 0) lines.push('', 'options:', ...optionLines(def.options));
  const globals = def.json ? GLOBAL_OPTIONS : Object.fromEntries(Object.entries(GLOBAL_OPTIONS).filter(([n]) => n !== 'json'));
  lines.push('', 'global options:', ...optionLines(globals));
  if (!def.json) lines.push('', 'This command has no JSON output (--json is refused).');
  lines.push('', exitLine(def), '');
  return lines.join('\n');
}

function exitLine(def: CommandDef): string {
  if (def.exitPolicy === 'restore-command') return wrap('exit status: 0 file fetched; 1 not in the archive; 255 fatal (recovery must stop).', '', 0);
  if (def.name === 'plan') return 'exit status: 0 ok; 1 error; with --detailed-exitcode 2 when the plan has changes.';
  return 'exit status: 0 ok; 1 error or a failed action/check.';
}

/** `pgbk help [COMMAND]`. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const name = parseCommand('help', args, {} as const).positionals[0];
  if (name === undefined) {
    io.stdout.write(renderUsage());
    return EXIT.ok;
  }
  const def = findCommand(name);
  if (def === undefined) throw unknownCommand(name);
  io.stdout.write(renderCommandHelp(def));
  return EXIT.ok;
}

export function unknownCommand(name: string): PgbkError {
  const guess = closest(
    name,
    COMMANDS.filter((c) => c.hidden !== true).map((c) => c.name),
  );
  return new PgbkError('USAGE', `unknown command "${name}"${guess === undefined ? '' : ` (did you mean ${guess}?)`}`, {
    hint: 'pgbk --help lists the commands',
  });
}

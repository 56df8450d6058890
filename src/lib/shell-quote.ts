/**
 * SSH's exec request carries one command line that the remote user's shell parses, so an argument
 * vector has to be quoted to arrive as the same vector. Single quotes pass every byte but the
 * single quote itself, which is closed, escaped and reopened.
 */

export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_/.,:=@%+-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

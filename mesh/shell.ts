// POSIX shell quoting: every argument that reaches a remote shell goes through here.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one argument for a POSIX shell: bare when it is plainly safe, else single-quoted. */
export function shQuote(arg: string): string {
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one shell command line. */
export function shJoin(argv: readonly string[]): string {
  return argv.map(shQuote).join(" ");
}

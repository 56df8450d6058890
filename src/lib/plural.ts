/** "1 backup", "2 backups": human output counts things in words, not "backup(s)". */
export function plural(n: number, singular: string, pluralWord = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralWord}`;
}

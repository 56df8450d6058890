/**
 * The settings a drill's throwaway copy runs with, local or on a drill host: the backup's own
 * settings, overridden so that only the drill's private socket reaches the copy and it never
 * archives into the catalog it was restored from.
 */

/** pg_hba.conf of the copy: trust, but only through the socket in the drill's private directory. */
export const DRILL_HBA = 'local all all trust\n';

/** postgres's `-c name=value` arguments: the backup's settings, then the drill's own over them. */
export function drillCopyArgs(settings: Readonly<Record<string, string>>, o: { port: number; runDir: string; hbaFile: string }): string[] {
  const own: Record<string, string> = {
    port: String(o.port),
    listen_addresses: '',
    unix_socket_directories: o.runDir,
    archive_mode: 'off',
    hba_file: o.hbaFile,
    ssl: 'off',
    logging_collector: 'off',
    cluster_name: 'pgbk-drill',
  };
  const args: string[] = [];
  for (const [k, v] of Object.entries({ ...settings, ...own })) args.push('-c', `${k}=${v}`);
  return args;
}

/**
 * transport/: how pgbk reaches a database host — this machine (LocalTransport) or another one over
 * SSH (SshTransport, host keys verified against known_hosts) — behind one Transport interface with
 * one contract test suite (test/integration/transport/contract.ts).
 */
export type { DirEntry, ExecProcess, ExitStatus, FileInfo, FileType, RunResult, Transport } from './transport.js';
export { LocalTransport, localTransport } from './local.js';
export { SshTransport, type SshOptions } from './ssh.js';
export { connectServer } from './connect.js';
export { fingerprintOf, hostLookupName, verifyHostKey } from './known-hosts.js';
export { shellJoin, shellQuote } from '../lib/shell-quote.js';

/** Where a server was told to listen, named as the environment named it. */
export interface ListenTarget {
  /** The variable that chose the port (`PORT`, `ATLAS_SIM_PORT`). */
  portVar: string;
  port: number;
  /** The variable that chose the address (`HOST`). */
  hostVar: string;
  host: string;
}

/**
 * A listen error as one line an operator can act on, naming the variable to change:
 * `PORT=4000: the port is already in use (EADDRINUSE)`. The stack says nothing more useful: the
 * cause is always the environment or the machine, never the code.
 */
export function listenErrorLine(err: unknown, at: ListenTarget): string {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? 'error';
  const port = `${at.portVar}=${at.port}`;
  const host = `${at.hostVar}=${JSON.stringify(at.host)}`;
  switch (code) {
    case 'EADDRINUSE':
      return `${port}: the port is already in use (EADDRINUSE)`;
    case 'EACCES':
      return `${port}: no permission to listen on this port (EACCES; ports below 1024 need privileges)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `${host}: cannot listen on it (${code}: no address found for this name)`;
    case 'EADDRNOTAVAIL':
      return `${host}: cannot listen on it (EADDRNOTAVAIL: not an address of this machine)`;
    default:
      return `${host} ${port}: cannot listen (${code}: ${e instanceof Error ? e.message : String(err)})`;
  }
}

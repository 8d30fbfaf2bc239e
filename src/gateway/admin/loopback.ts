/**
 * What counts as loopback for the admin listener: the socket a request came from (auth.ts,
 * loopback-only mode) and the address ADMIN_ADDR listens on (config.ts: tokens are required
 * whenever it is not loopback). Kept apart from auth.ts so the configuration can use it without
 * loading the HTTP layer.
 */

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (`::ffff:127.0.0.1`, how a dual-stack socket reports it). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** A listen host that only this machine can reach: a loopback address or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}

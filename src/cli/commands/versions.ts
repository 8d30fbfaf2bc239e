/** `sagas versions`: the saga definitions' versions, their sagas in flight, and what the gateway makes of each. */
import { ADMIN_ENV_USAGE, ADMIN_EXIT_USAGE, withAdmin, type AdminOk } from '../admin-client.js';
import { parseCommandArgs, type Command } from '../command.js';

export const VERSIONS_USAGE = `Usage: sagas versions [--json]

Every version of each saga definition that the gateway registers or that has sagas in flight in
the saga log, with its sagas in flight (running, compensating, parked) and its state, through the
admin API (GET /api/versions):
  driven here              the gateway registers it and drives its sagas
  left to other gateways   the gateway does not have it: gateways that do drive its sagas (a
                           rolling upgrade)
  removed here             an older version the gateway no longer registers while sagas still
                           use it: they are stranded until a gateway with it runs, or they are
                           moved (sagas migrate)
"starts here" marks the version the gateway starts new sagas on.
  --json                     the API's answer as JSON ({versions: [...]})
  -h, --help                 show this text

${ADMIN_ENV_USAGE}
${ADMIN_EXIT_USAGE}`;

type Version = AdminOk<'listVersions'>['versions'][number];

/** A version's state in words (the console says the same). */
export function stateWords(v: Pick<Version, 'state' | 'in_flight'>): string {
  switch (v.state) {
    case 'driven':
      return 'driven here';
    case 'left_to_others':
      return 'left to other gateways';
    case 'removed':
      return v.in_flight > 0 ? `removed here: ${v.in_flight} sagas stranded` : 'removed here';
  }
}

/** The versions as a table with a header, columns padded to their widest cell. */
export function versionsTable(versions: readonly Version[]): string {
  const head = ['DEFINITION', 'VERSION', 'STATE', 'STARTS HERE', 'RUNNING', 'COMPENSATING', 'PARKED'];
  const rows = versions.map((v) => [
    v.definition,
    String(v.version),
    stateWords(v),
    v.starts_here ? 'yes' : '-',
    String(v.running),
    String(v.compensating),
    String(v.parked),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  // Counts right-aligned, words left-aligned; no trailing spaces.
  const numeric = new Set([1, 4, 5, 6]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

export const versionsCommand: Command = {
  name: 'versions',
  summary: "List the saga definitions' versions with their sagas in flight, from the admin API",
  usage: VERSIONS_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { options: { json: { type: 'boolean' } } });
    return withAdmin(
      'versions',
      io,
      values.json ?? false,
      (c) => c.listVersions(),
      (body) => {
        if (body.versions.length === 0) {
          io.stdout.write('no saga definition is registered, and none has sagas in flight\n');
          return;
        }
        io.stdout.write(`${versionsTable(body.versions)}\n`);
        const stranded = body.versions.filter((v) => v.state === 'removed' && v.in_flight > 0);
        for (const v of stranded)
          io.stdout.write(
            `${v.definition}@${v.version}: ${v.in_flight} saga(s) in flight that this gateway no longer drives: run a gateway that registers it, or move them (sagas migrate --definition ${v.definition} --from ${v.version} --to N --dry-run)\n`,
          );
      },
    );
  },
};

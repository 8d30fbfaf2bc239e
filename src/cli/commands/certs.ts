/**
 * `sagas certs`: issues the mutual-TLS identities into TLS_DIR, one folder per process, before the
 * processes start — the step a deployment whose processes start on their own (docker-compose's
 * one-shot `certs` service, one process per machine) runs once. `sagas start` does the same on a
 * first start. The CA's key exists only inside this command (or in `--ca DIR`, the operator's).
 */
import path from 'node:path';
import { DATA_VARIABLES, GRPC_SECURITY_VARIABLES } from '../../platform/config/config.js';
import { readVariables } from '../../platform/config/config-schema.js';
import { TLS_IDENTITIES, TlsError, identityDir, issueIdentities } from '../../platform/grpc/tls.js';
import { EXIT, parseCommandArgs, type Command } from '../command.js';

export const CERTS_USAGE = `Usage: sagas certs [--ca DIR] [--renew] [--dir DIR]

Issues the identities the gateway and the participants use for mutual TLS, in TLS_DIR (default
$DATA_DIR/tls), one folder per process — all that process is given:
  gateway/    ca.crt gateway.crt gateway.key       (clientAuth: it calls)
  order/      ca.crt order.crt order.key           (serverAuth: it serves; inventory/, payment/ alike)
Keys are 0600, folders 0700. Identities already there are kept; a TLS_DIR of the old one-folder
layout is moved to this one first. The CA's key is in no identity folder: a participant that is
broken into cannot mint the gateway's certificate. By default the CA is made for this issue and
its key is never written; sagas start does this on a first start.

Options:
  --ca DIR      Issue with the CA in DIR (ca.crt and ca.key; an RSA, EC or Ed25519 key), e.g. your
                own, kept off the machines that run the processes. A DIR with neither file gets a
                new CA, its key kept there (0600) to issue again later.
  --renew       Issue all four again, replacing those there (without --ca, from a new CA): after a
                certificate expired or a key leaked, or to complete a TLS_DIR whose CA key was not
                kept. Restart every process afterwards.
  --dir DIR     Issue into DIR instead of TLS_DIR (to copy each folder to its own machine).
  -h, --help    Show this text.

Exit codes:
  0  the four identities are in place (issued now, or already there)
  1  they cannot be completed: the reason, and what to do, is printed
  2  a wrong command line, or an invalid TLS_DIR / DATA_DIR
`;

export const certsCommand: Command = {
  name: 'certs',
  summary: 'issue the mutual-TLS identities (one folder per process) into TLS_DIR',
  usage: CERTS_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(
      argv,
      { options: { ca: { type: 'string' }, renew: { type: 'boolean' }, dir: { type: 'string' } }, strict: true },
      { ca: 'a folder', dir: 'a folder' },
    );
    const tlsDir = path.resolve(
      values.dir ?? readVariables({ ...DATA_VARIABLES, ...GRPC_SECURITY_VARIABLES }, io.env).TLS_DIR,
    );
    const ca = values.ca === undefined ? undefined : path.resolve(values.ca);
    let report;
    try {
      report = await issueIdentities(tlsDir, { ca, renew: values.renew ?? false });
    } catch (err) {
      if (!(err instanceof TlsError)) throw err;
      io.stderr.write(`sagas certs: cannot complete the identities (${err.code}): ${err.message}\n`);
      return EXIT.failure;
    }
    const say = (s: string) => io.stdout.write(`${s}\n`);
    if (report.migrated) {
      say(
        `moved ${tlsDir} from the old one-folder layout to one folder per identity (${report.migrated.identities.join(', ') || 'none'})`,
      );
      if (report.migrated.caKeyMovedTo) {
        say(
          `the CA key that every process could read is now ${report.migrated.caKeyMovedTo}: move it off this machine (sagas certs --ca ${path.dirname(report.migrated.caKeyMovedTo)} issues with it) or delete it`,
        );
      }
    }
    if (report.issued.length === 0) {
      say(`nothing to issue: ${TLS_IDENTITIES.join(', ')} are in place in ${tlsDir}`);
    } else {
      const from = ca
        ? `the CA in ${ca}${report.newCa ? ' (made now; its key is kept there)' : ''}`
        : 'a new CA, whose key was used for this only and not kept';
      say(`issued ${report.issued.join(', ')} in ${tlsDir}, from ${from}`);
      if (values.renew) say('restart every process: the old identities are replaced');
    }
    for (const id of TLS_IDENTITIES) say(`  ${identityDir(tlsDir, id)}/  ca.crt ${id}.crt ${id}.key`);
    return EXIT.ok;
  },
};

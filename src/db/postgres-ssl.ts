import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

/** DATABASE_SSL: off, encrypted without checking the certificate (Heroku), or encrypted and checked. */
export type DatabaseSsl = 'false' | 'no-verify' | 'true';

/** What node-postgres is given: the URL without its TLS parameters, and the TLS decision made here. */
export interface PostgresConnection {
  connectionString: string;
  ssl: false | ConnectionOptions;
}

/** URL parameters about TLS: decided here, so node-postgres' own reading of them never applies. */
const TLS_PARAMETERS = ['sslmode', 'ssl', 'sslrootcert', 'sslcert', 'sslkey', 'uselibpqcompat'];

type Mode = 'disable' | 'no-verify' | 'verify-ca' | 'verify-full';

/**
 * The mode a URL asks for, with libpq's meanings (node-postgres 8 reads `require` as verify-full):
 * no sslmode, `disable` and `allow` are unencrypted; `prefer` and `require` are encrypted without
 * checking the certificate (unlike libpq, `prefer` does not fall back to unencrypted), and `require`
 * with `sslrootcert` checks the chain like `verify-ca`; `verify-ca` checks the chain;
 * `verify-full` checks the chain and the host name. node-postgres' own `ssl=true|1` is verify-full,
 * `ssl=no-verify` is no-verify, `ssl=false|0` is off.
 */
function modeFromUrl(params: URLSearchParams): Mode {
  const sslmode = params.get('sslmode');
  if (sslmode !== null) {
    switch (sslmode) {
      case 'disable':
      case 'allow':
        return 'disable';
      case 'prefer':
      case 'require':
        return params.has('sslrootcert') ? 'verify-ca' : 'no-verify';
      case 'verify-ca':
      case 'verify-full':
        return sslmode;
      default:
        throw new Error(
          `DATABASE_URL: unknown sslmode "${sslmode}" (use disable, allow, prefer, require, verify-ca or verify-full)`,
        );
    }
  }
  const ssl = params.get('ssl');
  if (ssl === 'true' || ssl === '1') return 'verify-full';
  if (ssl === 'no-verify') return 'no-verify';
  return 'disable';
}

function modeFromSetting(setting: DatabaseSsl): Mode {
  return setting === 'false' ? 'disable' : setting === 'no-verify' ? 'no-verify' : 'verify-full';
}

/**
 * The connection for `databaseUrl`: DATABASE_SSL, when set, decides whether TLS is used and checked;
 * unset, the URL's sslmode decides (see modeFromUrl). Certificate files named in the URL
 * (sslrootcert, sslcert, sslkey) are read; `sslrootcert=system` means the system's CAs.
 */
export function postgresConnection(databaseUrl: string, setting?: DatabaseSsl): PostgresConnection {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    // Not a URL (a Unix socket path, key=value): node-postgres reads it as it is, TLS off unless DATABASE_SSL says.
    return { connectionString: databaseUrl, ssl: tlsOptions(setting ? modeFromSetting(setting) : 'disable', null) };
  }
  const mode = setting ? modeFromSetting(setting) : modeFromUrl(url.searchParams);
  const ssl = tlsOptions(mode, url.searchParams);
  for (const name of TLS_PARAMETERS) url.searchParams.delete(name);
  return { connectionString: url.toString(), ssl };
}

function tlsOptions(mode: Mode, params: URLSearchParams | null): false | ConnectionOptions {
  if (mode === 'disable') return false;
  const file = (name: string) => {
    const path = params?.get(name);
    return path ? readFileSync(path, 'utf8') : undefined;
  };
  const rootCert = params?.get('sslrootcert');
  const options: ConnectionOptions = {
    rejectUnauthorized: mode !== 'no-verify',
    ...(rootCert && rootCert !== 'system' ? { ca: file('sslrootcert') } : {}),
    ...(params?.get('sslcert') ? { cert: file('sslcert') } : {}),
    ...(params?.get('sslkey') ? { key: file('sslkey') } : {}),
  };
  // verify-ca: the chain is checked, the host name is not (a certificate made for another name passes).
  if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
  return options;
}

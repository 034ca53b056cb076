let url: string | null = null;

/** Set once per test file by file-database.ts. */
export function useDatabase(databaseUrl: string): void {
  url = databaseUrl;
}

/** This test file's own database (a copy of the migrated template). */
export function databaseUrl(): string {
  if (url === null) throw new Error('no test database: file-database.ts runs before integration tests');
  return url;
}

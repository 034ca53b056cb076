// tsc compiles only TypeScript: the Lua scripts and the console's static files (CSS, its one
// script) are copied beside the compiled modules that read them.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';

const isStatic = (file) => file.endsWith('.lua') || file.startsWith(join('console', 'assets') + sep);

for (const file of readdirSync('src', { recursive: true, encoding: 'utf8', withFileTypes: false })) {
  if (!isStatic(file) || !/\.(lua|css|js)$/.test(file)) continue;
  const target = join('dist', 'src', file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join('src', file), target);
}

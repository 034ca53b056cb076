// tsc compiles only TypeScript: the Lua scripts are copied beside the compiled modules that read them.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

for (const file of readdirSync('src', { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.lua')) continue;
  const target = join('dist', 'src', file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join('src', file), target);
}

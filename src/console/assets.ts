import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Context } from 'koa';

/** The console's static files: beside this module in src/, copied beside the compiled one by the build. */
const ASSET_DIR = new URL('./assets/', import.meta.url);

const TYPES: Record<string, string> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

let loaded: Map<string, Asset> | undefined;

/** Read once, on first use: a console page then names each file with its digest in the URL. */
function assets(): Map<string, Asset> {
  if (loaded) return loaded;
  loaded = new Map();
  for (const [name, type] of Object.entries(TYPES)) {
    const body = readFileSync(new URL(name, ASSET_DIR));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    loaded.set(name, { body, type, etag });
  }
  return loaded;
}

/** The URL of a console asset, versioned by its content so it can be cached for good. */
export function assetUrl(name: 'console.css' | 'console.js'): string {
  const asset = assets().get(name)!;
  return `/console/assets/${name}?v=${asset.etag.slice(1, -1)}`;
}

/** Answers GET /console/assets/<name>: 304 for a known ETag, else the file, cacheable. */
export function serveAsset(ctx: Context, name: string): void {
  const asset = assets().get(name);
  if (!asset) {
    ctx.status = 404;
    ctx.type = 'text/plain';
    ctx.body = 'no such asset';
    return;
  }
  ctx.set('ETag', asset.etag);
  // A versioned URL (?v=) never changes content; an unversioned one is revalidated.
  ctx.set(
    'Cache-Control',
    ctx.query.v === asset.etag.slice(1, -1) ? 'public, max-age=31536000, immutable' : 'no-cache',
  );
  ctx.set('X-Content-Type-Options', 'nosniff');
  if (ctx.get('if-none-match') === asset.etag) {
    ctx.status = 304;
    return;
  }
  ctx.type = asset.type;
  ctx.body = asset.body;
}

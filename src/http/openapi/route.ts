import type Router from '@koa/router';
import { buildOpenApiDocument } from './document.js';

/** `GET /api/v1/openapi.json`: the description, built once (it depends on nothing but the code and PUBLIC_URL). */
export function registerOpenApiRoute(router: Router, publicUrl: string): void {
  let document: string | undefined;
  router.get('/openapi.json', (ctx) => {
    document ??= JSON.stringify(buildOpenApiDocument(publicUrl));
    ctx.type = 'application/json';
    ctx.body = document;
  });
}

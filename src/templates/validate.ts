/**
 * Static checks on a parsed template, so a bad template is refused when it is
 * compiled (at script upload) instead of failing when a dialog reaches it.
 */
import Handlebars from 'handlebars';
import { HELPERS } from './environment.js';
import { TemplateError } from './errors.js';

/** Maps a Handlebars position (1-based line, 0-based column) to a 1-based position in the source. */
export type Locate = (line: number, column: number) => { line: number; column: number };

type Call = hbs.AST.MustacheStatement | hbs.AST.BlockStatement | hbs.AST.SubExpression;

const ALLOWED = [...HELPERS.keys()].join(', ');

/** The helper name a call would use, if its path is a plain identifier (`foo`, not `this.foo` / `@foo` / `../foo`). */
function simpleName(path: hbs.AST.PathExpression | hbs.AST.Literal): string | undefined {
  if (path.type !== 'PathExpression') return undefined;
  const p = path as hbs.AST.PathExpression;
  if (p.data || p.depth !== 0 || p.parts.length !== 1 || /^\.|this\b/.test(p.original)) return undefined;
  return p.parts[0];
}

function calleeText(path: hbs.AST.PathExpression | hbs.AST.Literal): string {
  const original = (path as { original?: unknown }).original;
  return typeof original === 'string' ? original : String(original);
}

class TemplateChecker extends Handlebars.Visitor {
  constructor(private readonly locate: Locate) {
    super();
  }

  private fail(message: string, node: hbs.AST.Node): never {
    const start = node.loc?.start;
    throw new TemplateError(message, start ? this.locate(start.line, start.column) : undefined);
  }

  private checkCall(node: Call, kind: 'block' | 'inline' | 'subexpression'): void {
    const name = simpleName(node.path);
    const hasArgs = node.params.length > 0 || (node.hash?.pairs.length ?? 0) > 0;
    const helper = name === undefined ? undefined : HELPERS.get(name);
    if (name !== undefined && helper !== undefined) {
      if (helper.block && kind !== 'block') {
        this.fail(`"${name}" must be used as a block: {{#${name} …}}…{{/${name}}}`, node);
      }
      if (!helper.block && kind === 'block') {
        this.fail(`"${name}" is not a block helper; write {{#if (${name} a b)}}…{{/if}}`, node);
      }
      if (node.params.length !== helper.params) {
        const n = helper.params === 1 ? 'one argument' : `${helper.params} arguments`;
        this.fail(`"${name}" needs exactly ${n}, got ${node.params.length}`, node);
      }
      return;
    }
    // Without arguments `{{x}}` prints a value and `{{#x}}…{{/x}}` is a section; anything else is a helper call.
    if (hasArgs || kind === 'subexpression') {
      this.fail(`Unknown helper "${calleeText(node.path)}"; allowed helpers: ${ALLOWED}`, node);
    }
  }

  override MustacheStatement(node: hbs.AST.MustacheStatement): void {
    this.checkCall(node, 'inline');
    super.MustacheStatement(node);
  }

  override BlockStatement(node: hbs.AST.BlockStatement): void {
    this.checkCall(node, 'block');
    super.BlockStatement(node);
  }

  override SubExpression(node: hbs.AST.SubExpression): void {
    this.checkCall(node, 'subexpression');
    super.SubExpression(node);
  }

  override PartialStatement(node: hbs.AST.PartialStatement): void {
    this.fail('Partials ({{> name}}) are not supported', node);
  }

  override PartialBlockStatement(node: hbs.AST.PartialBlockStatement): void {
    this.fail('Partials ({{#> name}}) are not supported', node);
  }

  override Decorator(node: hbs.AST.Decorator): void {
    this.fail('Decorators ({{* name}}) are not supported', node);
  }

  override DecoratorBlock(node: hbs.AST.DecoratorBlock): void {
    this.fail('Decorators ({{#* name}}) are not supported', node);
  }
}

/** Throws TemplateError for partials, decorators, unknown helpers and misused helpers. */
export function checkTemplateAst(ast: hbs.AST.Program, locate: Locate): void {
  new TemplateChecker(locate).accept(ast);
}

import type { ParsedStep } from './step-schemas.js';
import { isWaitingStep, stepTransitions } from './transitions.js';
import type { ScriptProblem } from './types.js';

interface Edge {
  to: string;
  path: string;
}

interface Node {
  key: string;
  index: number;
  edges: Edge[];
}

/** Graph of automatic transitions between steps that do not wait. */
function buildGraph(steps: ReadonlyArray<{ index: number; step: ParsedStep }>): Map<string, Node> {
  const nodes = new Map<string, Node>();
  for (const { index, step } of steps) {
    if (!isWaitingStep(step) && !nodes.has(step.key)) nodes.set(step.key, { key: step.key, index, edges: [] });
  }
  for (const { index, step } of steps) {
    const node = nodes.get(step.key);
    if (node?.index !== index) continue;
    for (const { target, path, automatic } of stepTransitions(step, index)) {
      if (automatic && nodes.has(target)) node.edges.push({ to: target, path });
    }
  }
  return nodes;
}

/** Strongly connected components (Tarjan). */
function components(nodes: ReadonlyMap<string, Node>): string[][] {
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const result: string[][] = [];
  const visit = (key: string): void => {
    order.set(key, order.size);
    low.set(key, order.get(key)!);
    stack.push(key);
    onStack.add(key);
    for (const { to } of nodes.get(key)!.edges) {
      if (!order.has(to)) {
        visit(to);
        low.set(key, Math.min(low.get(key)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(key, Math.min(low.get(key)!, order.get(to)!));
      }
    }
    if (low.get(key) === order.get(key)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== key);
      result.push(component);
    }
  };
  for (const key of nodes.keys()) if (!order.has(key)) visit(key);
  return result;
}

/** Shortest cycle from `start` back to itself inside `members`, as its edges. */
function cycleThrough(start: string, members: ReadonlySet<string>, nodes: ReadonlyMap<string, Node>): Edge[] | null {
  const cameBy = new Map<string, { from: string; edge: Edge }>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const from = queue[head]!;
    for (const edge of nodes.get(from)!.edges) {
      if (!members.has(edge.to)) continue;
      if (edge.to === start) {
        const edges = [edge];
        for (let at = from; at !== start;) {
          const step = cameBy.get(at)!;
          edges.unshift(step.edge);
          at = step.from;
        }
        return edges;
      }
      if (!cameBy.has(edge.to)) {
        cameBy.set(edge.to, { from, edge });
        queue.push(edge.to);
      }
    }
  }
  return null;
}

/**
 * A loop of steps that never wait (no delay, input, or button-only message)
 * would spin the dialog forever; each such loop is a problem naming its keys.
 */
export function checkWaitLoops(steps: ReadonlyArray<{ index: number; step: ParsedStep }>): ScriptProblem[] {
  const nodes = buildGraph(steps);
  const problems: Array<ScriptProblem & { index: number }> = [];
  for (const component of components(nodes)) {
    const members = new Set(component);
    const start = component.reduce((a, b) => (nodes.get(a)!.index <= nodes.get(b)!.index ? a : b));
    const cycle = cycleThrough(start, members, nodes);
    if (cycle === null) continue;
    const keys = [start, ...cycle.map((edge) => edge.to)];
    problems.push({
      index: nodes.get(start)!.index,
      step: start,
      path: cycle[0]!.path,
      message: `loop without a wait: ${keys.join(' → ')}`,
    });
  }
  return problems.sort((a, b) => a.index - b.index).map(({ index: _index, ...problem }) => problem);
}

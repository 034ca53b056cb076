export type PathSegment = string | number;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['steps', 3, 'buttons', 0, 'next']` → `steps[3].buttons[0].next`; odd keys are quoted: `headers["X-Id"]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let path = '';
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) path += path === '' ? segment : `.${segment}`;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}

/** `steps[2]` */
export function stepPath(index: number, ...rest: PathSegment[]): string {
  return formatPath(['steps', index, ...rest]);
}

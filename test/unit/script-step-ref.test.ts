import { describe, expect, it } from 'vitest';
import { findStepRef } from '../../src/db/script-steps.js';

const STEPS = [
  { id: '6f1c2d3e-0000-4000-8000-00000000000a', key: 'welcome' },
  { id: '6f1c2d3e-0000-4000-8000-00000000000b', key: 'offer' },
];

describe('findStepRef', () => {
  it('finds a step by its id, in any case, or by its key', () => {
    expect(findStepRef(STEPS, '6f1c2d3e-0000-4000-8000-00000000000b')).toBe(STEPS[1]);
    expect(findStepRef(STEPS, '6F1C2D3E-0000-4000-8000-00000000000B')).toBe(STEPS[1]);
    expect(findStepRef(STEPS, 'welcome')).toBe(STEPS[0]);
  });

  it('finds none for an unknown ref, and keys are matched exactly', () => {
    expect(findStepRef(STEPS, 'missing')).toBeUndefined();
    expect(findStepRef(STEPS, 'WELCOME')).toBeUndefined();
  });
});

export { validateScript } from './validate-script.js';
export { assignStepIds, type StepId } from './assign-step-ids.js';
export { isWaitingStep, stepTransitions, type Transition } from './transitions.js';
export { templateSources, type TemplateSource } from './template-sources.js';
export { SCRIPT_LIMITS } from './limits.js';
export { KEY_PATTERN, isValidKey } from '../keys.js';
export * from './types.js';

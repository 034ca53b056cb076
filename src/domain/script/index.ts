export { validateScript } from './validate-script.js';
export { assignStepIds, type StepId } from './assign-step-ids.js';
export { type Transition } from './transitions.js';
export { type TemplateSource } from './template-sources.js';
export * from './types.js';

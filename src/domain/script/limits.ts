/** Size bounds of a script document; anything larger is refused as a shape problem. */
export const SCRIPT_LIMITS = {
  maxSteps: 500,
  keyLength: 64,
  textLength: 4096,
  buttonTextLength: 128,
  maxButtons: 100,
  urlLength: 2048,
  bodyLength: 16_384,
  maxHeaders: 50,
  headerNameLength: 128,
  headerValueLength: 2048,
  maxBranches: 20,
  maxConditionsPerBranch: 10,
  conditionValueLength: 1024,
  maxVariants: 20,
  maxWeight: 1_000_000,
  maxTagsPerChange: 100,
  maxFields: 100,
  fieldValueLength: 4096,
  maxDelaySeconds: 31 * 24 * 60 * 60,
  /** Problems past this count are summarized in one last problem. */
  maxProblems: 1000,
} as const;

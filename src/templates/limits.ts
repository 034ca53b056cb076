/** Largest accepted template source, in UTF-8 bytes. */
export const MAX_TEMPLATE_BYTES = 8 * 1024;

/** Largest rendered output, in characters (UTF-16 code units). */
export const MAX_RENDER_LENGTH = 64 * 1024;

/** Most `{{#each}}` iterations (summed over all loops, nested or not) in one render. */
export const MAX_EACH_ITERATIONS = 1000;

/** Most helper calls (if, unless, with, each, eq, {{#section}}) in one render. */
export const MAX_HELPER_CALLS = 10_000;

/** How many compiled templates are kept in the LRU cache. */
export const TEMPLATE_CACHE_SIZE = 1000;

/** Custom / tracker field keys. Values under other keys are not visible to templates. */
export const FIELD_KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

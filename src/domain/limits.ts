/**
 * Bounds on what callers may put into a dialog, so that no caller can bloat one: how many
 * parameters one postback carries, and how many keys a dialog holds. Error messages name them.
 */

/** Most parameters one postback (query string and body together, JSON `fields`/`tracker` keys each counted) carries; more is 413. */
export const MAX_POSTBACK_PARAMS = 200;

/** Largest value of one postback parameter, in UTF-8 bytes; larger is 413. */
export const MAX_POSTBACK_VALUE_BYTES = 4096;

/** Most custom fields one dialog holds. */
export const MAX_DIALOG_FIELDS = 200;

/** Most tracker fields one dialog holds. */
export const MAX_DIALOG_TRACKER_FIELDS = 200;

/** Most tags one dialog holds. */
export const MAX_DIALOG_TAGS = 500;

// Randomized interleavings, part 2 of 3: the runs numbered 2, 5 … of PROPERTY_RUNS (5 by default), as test/support/interleaving.ts describes.
import { defineInterleavingRuns } from '../support/interleaving.js';

defineInterleavingRuns(1, 3);

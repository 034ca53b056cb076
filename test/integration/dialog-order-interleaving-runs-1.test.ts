// Randomized interleavings, part 1 of 2: the runs numbered 1, 3, 5 … of PROPERTY_RUNS (5 by default), as test/support/interleaving.ts describes.
import { defineInterleavingRuns } from '../support/interleaving.js';

defineInterleavingRuns(0, 2);

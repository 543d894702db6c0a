/**
 * Whole-volume fuzz of damaged images, the default slice: 1,000 cases in
 * seeded batches (the first ten of the slow run's hundred), and the fixed
 * damages. test/fs/volume-fuzz.slow.test.ts runs all 10,000.
 */
import { volumeFuzz } from '../helpers/volume-fuzz.js';

volumeFuzz({ cases: 1_000, batch: 100, fixed: true });

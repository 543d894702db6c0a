/**
 * Fuzzing the format's validating door, the default slice: 1,000 damaged
 * images in seeded batches (the first ones of the slow run), the forged
 * damages, the blob decoder and the huge counts.
 * test/fs/format-fuzz.slow.test.ts runs all 10,000 damaged images.
 */
import { formatFuzz } from '../helpers/format-fuzz.js';

formatFuzz({ cases: 1_000, batch: 250, others: true });

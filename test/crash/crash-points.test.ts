/**
 * Power cut at every device operation of a workload, then recovery
 * (test/helpers/crash-points.ts), the default slice: the last geometry (the
 * lightest, and the one where a torn write splits a filesystem block).
 * test/crash/crash-points.slow.test.ts runs every geometry.
 */
import { crashPoints } from '../helpers/crash-points.js';

crashPoints([2]);

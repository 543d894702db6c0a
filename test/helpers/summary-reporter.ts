// Prints one plain closing line, "N passed, N failed, N skipped", after
// vitest's own summary, so that CI logs can be read by tools that know no
// vitest.
import type { Reporter } from 'vitest/reporters';

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

function count(tasks: TaskLike[], acc: { passed: number; failed: number; skipped: number }) {
  for (const t of tasks) {
    if (t.type === 'test') {
      const s = t.result?.state;
      if (s === 'pass') acc.passed++;
      else if (s === 'fail') acc.failed++;
      else acc.skipped++;
    } else if (t.tasks) {
      count(t.tasks, acc);
    }
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files?: unknown[], errors?: unknown[]): void {
    const acc = { passed: 0, failed: 0, skipped: 0 };
    count((files ?? []) as TaskLike[], acc);
    const failedFiles = ((files ?? []) as TaskLike[]).filter((f) => f.result?.state === 'fail' && !f.tasks?.length).length;
    acc.failed += failedFiles + (errors?.length ?? 0);
    process.stdout.write(`\n${acc.passed} passed, ${acc.failed} failed, ${acc.skipped} skipped\n`);
  }
}

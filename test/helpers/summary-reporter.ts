// Prints one plain closing line, "N passed, N failed, N skipped", after
// vitest's own summary, so that CI logs can be read by tools that know no
// vitest; before it, one line per reason tests were skipped for (the notes
// of tools.ts, e.g. "needs fsverity: install fsverity-utils ..."), so that a
// fresh machine says which live checks did not run and what to install.
import type { Reporter } from 'vitest/reporters';

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string; note?: string };
  tasks?: TaskLike[];
}

interface Acc {
  passed: number;
  failed: number;
  skipped: number;
  notes: Map<string, number>;
}

function count(tasks: TaskLike[], acc: Acc) {
  for (const t of tasks) {
    if (t.type === 'test') {
      const s = t.result?.state;
      if (s === 'pass') acc.passed++;
      else if (s === 'fail') acc.failed++;
      else {
        acc.skipped++;
        const note = t.result?.note;
        if (note) acc.notes.set(note, (acc.notes.get(note) ?? 0) + 1);
      }
    } else if (t.tasks) {
      count(t.tasks, acc);
    }
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files?: unknown[], errors?: unknown[]): void {
    const acc: Acc = { passed: 0, failed: 0, skipped: 0, notes: new Map() };
    count((files ?? []) as TaskLike[], acc);
    const failedFiles = ((files ?? []) as TaskLike[]).filter((f) => f.result?.state === 'fail' && !f.tasks?.length).length;
    acc.failed += failedFiles + (errors?.length ?? 0);
    let out = '\n';
    for (const [note, n] of [...acc.notes].sort()) out += `skipped ${n} (${note})\n`;
    out += `${acc.passed} passed, ${acc.failed} failed, ${acc.skipped} skipped\n`;
    process.stdout.write(out);
  }
}

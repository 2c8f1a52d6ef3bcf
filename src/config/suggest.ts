/** Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`priorty`, `enalbed`). */
function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1] ?? [];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((above[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (above[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (rows[i - 2]?.[j - 2] ?? 0) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]?.[b.length] ?? Math.max(a.length, b.length);
}

/** Case, `_` and `-` do not count: `access_key_id` is close to `accessKeyID`. */
function fold(word: string): string {
  return word.toLowerCase().replace(/[-_]/g, '');
}

/**
 * The candidate the operator most likely meant, or undefined when none is close enough to be a
 * typo (roughly one edit per four characters, at least one).
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const folded = fold(word);
  const limit = Math.max(1, Math.floor(folded.length / 4));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(folded, fold(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

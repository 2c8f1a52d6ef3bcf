// Preloaded (`node --import`) into a measured process: on exit, writes where its memory is —
// V8 heap, external/ArrayBuffers, and the rest of the RSS (code, native libraries, stacks) — as
// one JSON line on stderr, so the bench can say what a peak RSS is made of.
import { memoryUsage } from 'node:process';
import { getHeapStatistics } from 'node:v8';

process.on('exit', () => {
  const m = memoryUsage();
  const h = getHeapStatistics();
  const mb = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;
  process.stderr.write(
    `BENCH_MEMORY ${JSON.stringify({
      rssAtExitMb: mb(m.rss),
      heapTotalMb: mb(m.heapTotal),
      heapUsedMb: mb(m.heapUsed),
      externalMb: mb(m.external),
      arrayBuffersMb: mb(m.arrayBuffers),
      peakMallocedMb: mb(h.peak_malloced_memory),
      codeAndMetadataMb: mb(h.total_heap_size_executable),
    })}\n`,
  );
});

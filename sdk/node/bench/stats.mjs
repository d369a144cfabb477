// Small helpers for the benchmarks (not a test file).

/** summary of latencies in nanoseconds (bigint or number) as microseconds. */
export function summary(samplesNs) {
  const us = Float64Array.from(samplesNs, (ns) => Number(ns) / 1000).sort();
  const at = (q) => us[Math.min(us.length - 1, Math.floor(q * us.length))];
  const mean = us.reduce((a, b) => a + b, 0) / us.length;
  return { n: us.length, mean, p50: at(0.5), p99: at(0.99) };
}

export const fmt = (x) => x.toFixed(1).padStart(8);

/** argv reads --name value pairs with defaults. */
export function flags(defaults) {
  const out = { ...defaults };
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 2) out[args[i].replace(/^--/, "")] = args[i + 1];
  return out;
}

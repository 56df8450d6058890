/**
 * The Prometheus text format pgbk writes (collect.ts), read back into families for
 * `pgbk metrics --json`: one renderer of the numbers, two presentations.
 */

export interface MetricSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number | null;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: string | null;
  readonly help: string | null;
  readonly samples: MetricSample[];
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    labels[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
  }
  return labels;
}

export function parsePrometheusText(text: string): MetricFamily[] {
  const families = new Map<string, { name: string; type: string | null; help: string | null; samples: MetricSample[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: null, help: null, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'HELP') family(meta[2]!).help = meta[3] ?? '';
      else family(meta[2]!).type = meta[3] ?? '';
      continue;
    }
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    family(m[1]!).samples.push({ labels: m[2] === undefined ? {} : parseLabels(m[2]), value: Number.isFinite(value) ? value : null });
  }
  return [...families.values()];
}

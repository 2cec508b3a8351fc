import { bytes } from '../lib/format';

/** How much of a quota is used: a meter with the figures in words. */
export function QuotaBar({ used, hard, label }: { used: number; hard: number; label: string }) {
  const unlimited = hard < 0;
  const ratio = unlimited || hard === 0 ? 0 : Math.min(1, used / hard);
  const level = ratio >= 0.9 ? 'high' : ratio >= 0.7 ? 'mid' : 'low';
  const text = unlimited ? `${bytes(used)} / ∞` : `${bytes(used)} / ${bytes(hard)}`;
  return (
    <div class="quota">
      <div
        class={`quota-bar quota-${level}`}
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={unlimited ? undefined : hard}
        aria-valuenow={used}
        aria-valuetext={text}
      >
        <span style={{ width: `${(ratio * 100).toFixed(1)}%` }} />
      </div>
      <small>{text}</small>
    </div>
  );
}

export interface Series {
  label: string;
  cls: string;
  values: number[];
}

/**
 * Grouped bars over labelled buckets (days), in SVG. The numbers are also
 * in a table for screen readers (the picture is `aria-hidden`).
 */
export function BarChart({ title, buckets, series }: { title: string; buckets: string[]; series: Series[] }) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const w = 640;
  const h = 200;
  const pad = 28;
  const groupW = (w - pad) / Math.max(1, buckets.length);
  const barW = Math.max(2, (groupW - 4) / Math.max(1, series.length));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h + 24}`} aria-hidden="true" focusable="false">
        <line x1={pad} y1={h} x2={w} y2={h} class="axis" />
        <text x={pad - 4} y={12} class="tick" text-anchor="end">
          {max}
        </text>
        <text x={pad - 4} y={h} class="tick" text-anchor="end">
          0
        </text>
        {buckets.map((b, i) => (
          <g key={b}>
            {series.map((s, j) => {
              const v = s.values[i] ?? 0;
              const bh = (v / max) * (h - 16);
              return <rect class={s.cls} x={pad + i * groupW + 2 + j * barW} y={h - bh} width={barW - 1} height={bh} />;
            })}
            {(buckets.length <= 14 || i % Math.ceil(buckets.length / 14) === 0) && (
              <text x={pad + i * groupW + groupW / 2} y={h + 16} class="tick" text-anchor="middle">
                {b.slice(5)}
              </text>
            )}
          </g>
        ))}
      </svg>
      <ul class="legend" aria-hidden="true">
        {series.map((s) => (
          <li>
            <span class={`swatch ${s.cls}`} /> {s.label}
          </li>
        ))}
      </ul>
      <table class="visually-hidden">
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">—</th>
            {series.map((s) => (
              <th scope="col">{s.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {buckets.map((b, i) => (
            <tr>
              <th scope="row">{b}</th>
              {series.map((s) => (
                <td>{s.values[i] ?? 0}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

// The audit log, system-wide (`/audit-logs`, system admins) or of one
// project (`/projects/{name}/logs`), with a chart of pushes and pulls per
// day over the last two weeks above the table.
import { useEffect, useState } from 'preact/hooks';
import { page, seg, type Page } from '../lib/api';
import { date } from '../lib/format';
import { explain, messages } from '../lib/i18n';
import type { Project } from '../lib/types';
import { Alert } from './Alert';
import { BarChart } from './Charts';
import { DataTable } from './DataTable';

const t = messages({
  en: {
    caption: 'Audit log',
    captionOf: 'Audit log of {project}',
    search: 'Search logs',
    searchBy: 'Search by',
    from: 'From',
    to: 'To',
    username: 'Username',
    resource: 'Resource',
    resourceType: 'Resource type',
    operation: 'Operation',
    time: 'Time',
    times: '× {n}',
    timesTitle: '{n} pulls gathered into one entry',
    chartTitle: 'Pushes and pulls per day, last {days} days',
    pushes: 'Pushes',
    pulls: 'Pulls',
    chartLoading: 'Counting pushes and pulls…',
    capped: 'Counted from the newest {n} log entries only; older activity in this period is not in the chart.',
    chartFailed: 'The activity chart could not be drawn. {reason}',
    noActivity: 'No pushes or pulls in the last {days} days.',
    pullDelay: 'Pulls reach the log in batches, so the latest ones can appear after a short delay. Repeated pulls of one artifact by one client are counted together.',
    adminOnly:
      'The system-wide log is for system administrators. To see what happened in a project, open the project and its Logs tab.',
    toProjects: 'Go to projects',
  },
  zh: {
    caption: '审计日志',
    captionOf: '{project} 的审计日志',
    search: '搜索日志',
    searchBy: '搜索字段',
    from: '开始日期',
    to: '结束日期',
    username: '用户名',
    resource: '资源',
    resourceType: '资源类型',
    operation: '操作',
    time: '时间',
    times: '× {n}',
    timesTitle: '{n} 次拉取合并为一条记录',
    chartTitle: '最近 {days} 天每日推送与拉取次数',
    pushes: '推送',
    pulls: '拉取',
    chartLoading: '正在统计推送与拉取…',
    capped: '仅统计了最新的 {n} 条日志；该时段内更早的活动未计入图表。',
    chartFailed: '无法绘制活动图表。{reason}',
    noActivity: '最近 {days} 天内没有推送或拉取。',
    pullDelay: '拉取记录会分批写入日志，最新的拉取可能稍后才出现。同一客户端对同一制品的重复拉取会合并计数。',
    adminOnly: '系统级日志仅对系统管理员开放。如需查看某个项目中的操作，请打开该项目的“日志”页。',
    toProjects: '前往项目列表',
  },
});

export interface AuditEntry {
  id: number;
  username: string;
  resource: string;
  resource_type: string;
  operation: string;
  op_time: string;
  /** Berth: pulls gathered into one entry say how many. */
  count?: number;
}

const DAYS = 14;
const CHART_PAGE = 100;
const CHART_PAGES = 10;

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
/** A local calendar day, `YYYY-MM-DD`. */
function dayKey(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
/** RFC 3339 in UTC without fractions, as the API's `op_time` range takes. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

type Activity = { buckets: string[]; pushes: number[]; pulls: number[]; capped: boolean };

/**
 * Pushes (artifacts created) and pulls per local day, counted from the log
 * entries of the period: at most CHART_PAGES pages of CHART_PAGE entries.
 */
async function countActivity(path: string): Promise<Activity> {
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  start.setDate(start.getDate() - (DAYS - 1));
  const buckets: string[] = [];
  for (let i = 0; i < DAYS; i++) {
    const d = new Date(start);
    d.setDate(start.getDate() + i);
    buckets.push(dayKey(d));
  }
  const index = new Map(buckets.map((b, i) => [b, i]));
  const pushes = new Array<number>(DAYS).fill(0);
  const pulls = new Array<number>(DAYS).fill(0);
  const q = `resource_type=artifact,operation={create pull},op_time=[${rfc3339(start)}~${rfc3339(new Date())}]`;
  let seen = 0;
  let capped = false;
  for (let p = 1; p <= CHART_PAGES; p++) {
    const got: Page<AuditEntry> = await page<AuditEntry>(path, { page: p, page_size: CHART_PAGE, q });
    for (const e of got.items) {
      const i = index.get(dayKey(new Date(e.op_time)));
      if (i === undefined) continue;
      if (e.operation === 'create') pushes[i] += 1;
      else if (e.operation === 'pull') pulls[i] += e.count ?? 1;
    }
    seen += got.items.length;
    if (got.items.length < CHART_PAGE || seen >= got.total) break;
    if (p === CHART_PAGES) capped = true;
  }
  return { buckets, pushes, pulls, capped };
}

function ActivityChart({ path }: { path: string }) {
  const [data, setData] = useState<Activity | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    setData(null);
    setError('');
    countActivity(path).then(
      (a) => live && setData(a),
      (e) => live && setError(t('chartFailed', { reason: explain(e) })),
    );
    return () => {
      live = false;
    };
  }, [path]);
  if (error) return <Alert>{error}</Alert>;
  if (!data) return <p aria-busy="true">{t('chartLoading')}</p>;
  return (
    <>
      <BarChart
        title={t('chartTitle', { days: DAYS })}
        buckets={data.buckets}
        series={[
          { label: t('pushes'), cls: 's1', values: data.pushes },
          { label: t('pulls'), cls: 's2', values: data.pulls },
        ]}
      />
      <p class="muted">
        <small>
          {data.pushes.every((n) => n === 0) && data.pulls.every((n) => n === 0) && <>{t('noActivity', { days: DAYS })} </>}
          {data.capped && <>{t('capped', { n: CHART_PAGE * CHART_PAGES })} </>}
          {t('pullDelay')}
        </small>
      </p>
    </>
  );
}

const FIELDS = ['operation', 'resource', 'resource_type', 'username'] as const;
type Field = (typeof FIELDS)[number];
const FIELD_LABEL: Record<Field, 'operation' | 'resource' | 'resourceType' | 'username'> = {
  operation: 'operation',
  resource: 'resource',
  resource_type: 'resourceType',
  username: 'username',
};

/** Harbor's `q` for the log: a fuzzy match on one field and a day range. */
function logQuery(field: Field, search: string, from: string, to: string): string | undefined {
  const parts: string[] = [];
  // `,` separates `q` terms, so it cannot be searched for.
  const text = search.replace(/,/g, ' ').trim();
  if (text) parts.push(`${field}=~${text}`);
  if (from || to) {
    const a = from ? rfc3339(new Date(`${from}T00:00:00`)) : '';
    const b = to ? rfc3339(new Date(`${to}T23:59:59`)) : '';
    parts.push(`op_time=[${a}~${b}]`);
  }
  return parts.length ? parts.join(',') : undefined;
}

/**
 * The log of `project`, or the system's when no project is given (only
 * system admins may read it: `admin` false shows an explanation instead).
 */
export function AuditLogView({ project, admin }: { project?: Project; admin: boolean }) {
  const [field, setField] = useState<Field>('operation');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  if (!project && !admin) {
    return (
      <Alert kind="info">
        {t('adminOnly')} <a href="/harbor/projects">{t('toProjects')}</a>
      </Alert>
    );
  }
  const path = project ? `/projects/${seg(project.name)}/logs` : '/audit-logs';
  return (
    <>
      <ActivityChart path={path} />
      <DataTable<AuditEntry>
        caption={project ? t('captionOf', { project: project.name }) : t('caption')}
        searchLabel={t('search')}
        reloadKey={`${field}|${from}|${to}`}
        rowKey={(e) => e.id}
        pageSizes={[15, 25, 50, 100]}
        toolbar={
          <>
            <label class="inline">
              <span style={{ whiteSpace: 'nowrap' }}>{t('searchBy')}</span>
              <select value={field} onChange={(e) => setField((e.target as HTMLSelectElement).value as Field)}>
                {FIELDS.map((f) => (
                  <option value={f}>{t(FIELD_LABEL[f])}</option>
                ))}
              </select>
            </label>
            <label class="inline">
              <span style={{ whiteSpace: 'nowrap' }}>{t('from')}</span>
              <input type="date" value={from} max={to || undefined} onChange={(e) => setFrom((e.target as HTMLInputElement).value)} />
            </label>
            <label class="inline">
              <span style={{ whiteSpace: 'nowrap' }}>{t('to')}</span>
              <input type="date" value={to} min={from || undefined} onChange={(e) => setTo((e.target as HTMLInputElement).value)} />
            </label>
          </>
        }
        load={({ page: p, pageSize, search }) => page<AuditEntry>(path, { page: p, page_size: pageSize, q: logQuery(field, search, from, to) })}
        columns={[
          { label: t('username'), render: (e) => e.username },
          { label: t('resource'), render: (e) => <code style={{ overflowWrap: 'anywhere', wordBreak: 'break-all' }}>{e.resource}</code> },
          { label: t('resourceType'), render: (e) => e.resource_type },
          {
            label: t('operation'),
            render: (e) => (
              <>
                {e.operation}
                {(e.count ?? 1) > 1 && (
                  <span class="muted" title={t('timesTitle', { n: e.count! })}>
                    {' '}
                    {t('times', { n: e.count! })}
                  </span>
                )}
              </>
            ),
          },
          { label: t('time'), render: (e) => date(e.op_time) },
        ]}
      />
    </>
  );
}

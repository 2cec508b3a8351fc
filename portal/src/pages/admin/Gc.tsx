// Clean Up (garbage collection): the schedule, a run now (real or dry), and
// the history of runs with their logs. System admins only (the route says so).
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { DataTable } from '../../components/DataTable';
import { LogDialog, Status, checked, val } from '../../components/pol-Common';
import { create, get, page, put } from '../../lib/api';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';

const t = messages({
  en: {
    title: 'Clean Up',
    gc: 'Garbage Collection',
    intro: 'Garbage collection removes blobs no artifact references any more, and frees their storage.',
    schedule: 'Schedule',
    scheduleType: 'Schedule type',
    none: 'None',
    hourly: 'Hourly',
    daily: 'Daily',
    weekly: 'Weekly',
    custom: 'Custom',
    cron: 'Cron expression',
    cronHelp: 'Six fields: second minute hour day month weekday, e.g. 0 0 2 * * *',
    nextRun: 'Next run: {time}',
    deleteUntagged: 'Delete untagged artifacts',
    gcNow: 'GC now',
    dryRun: 'Dry run',
    started: 'Garbage collection {id} started.',
    startedDry: 'Dry run {id} started: see its log for what it would remove.',
    scheduleSaved: 'Schedule saved.',
    history: 'GC History',
    id: 'ID',
    trigger: 'Trigger',
    dry: 'Dry run',
    progress: 'Progress',
    untagged: 'Untagged',
    startTime: 'Start time',
    updateTime: 'Update time',
    log: 'Log',
    logOf: 'Log of garbage collection {id}',
    stop: 'Stop',
    stopOf: 'Stop garbage collection {id}',
    logButton: 'Log of run {id}',
  },
  zh: {
    title: '清理',
    gc: '垃圾清理',
    intro: '垃圾清理会删除不再被任何制品引用的数据块，并释放其占用的存储。',
    schedule: '定时任务',
    scheduleType: '计划类型',
    none: '无',
    hourly: '每小时',
    daily: '每天',
    weekly: '每周',
    custom: '自定义',
    cron: 'Cron 表达式',
    cronHelp: '六个字段：秒 分 时 日 月 星期，例如 0 0 2 * * *',
    nextRun: '下次执行：{time}',
    deleteUntagged: '删除未打标签的制品',
    gcNow: '立即清理垃圾',
    dryRun: '模拟运行',
    started: '垃圾清理 {id} 已开始。',
    startedDry: '模拟运行 {id} 已开始：查看日志了解将删除的内容。',
    scheduleSaved: '定时任务已保存。',
    history: '垃圾清理历史',
    id: 'ID',
    trigger: '触发方式',
    dry: '模拟运行',
    progress: '进度',
    untagged: '未打标签',
    startTime: '开始时间',
    updateTime: '更新时间',
    log: '日志',
    logOf: '垃圾清理 {id} 的日志',
    stop: '停止',
    stopOf: '停止垃圾清理 {id}',
    logButton: '运行 {id} 的日志',
  },
});

interface GcRun {
  id: number;
  job_kind?: string;
  job_parameters?: string;
  job_status?: string;
  creation_time?: string;
  update_time?: string;
  progress?: { phase?: string; tasks?: number; done?: number };
}

interface GcSchedule {
  job_parameters?: string;
  schedule?: { type?: string; cron?: string; next_scheduled_time?: string };
}

function params(s: string | undefined): { dry_run?: boolean; delete_untagged?: boolean } {
  try {
    return JSON.parse(s || '{}') ?? {};
  } catch {
    return {};
  }
}

const TYPES = ['None', 'Hourly', 'Daily', 'Weekly', 'Custom'] as const;
const ACTIVE = /^(pending|running|scheduled)$/i;

export function GarbageCollection(_props: Record<string, unknown>) {
  const [type, setType] = useState('None');
  const [cron, setCron] = useState('');
  const [next, setNext] = useState('');
  const [untagged, setUntagged] = useState(false);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState('');
  const [reload, setReload] = useState(0);
  const [active, setActive] = useState(false);
  const [logOf, setLogOf] = useState<number | null>(null);

  const loadSchedule = () =>
    get<GcSchedule>('/system/gc/schedule').then(
      (s) => {
        setType(s.schedule?.type || 'None');
        setCron(s.schedule?.cron ?? '');
        setNext(s.schedule?.next_scheduled_time ?? '');
        setUntagged(!!params(s.job_parameters).delete_untagged);
      },
      (e) => setError(explain(e)),
    );
  useEffect(() => {
    loadSchedule();
  }, []);

  // While a run is under way, refresh the history every few seconds.
  useEffect(() => {
    if (!active) return;
    const h = setInterval(() => setReload((n) => n + 1), 4000);
    return () => clearInterval(h);
  }, [active]);

  const saveSchedule = async (e: Event) => {
    e.preventDefault();
    setBusy('save');
    setError('');
    setNotice('');
    try {
      await put('/system/gc/schedule', {
        schedule: { type, cron: type === 'Custom' ? cron.trim() : '' },
        parameters: { delete_untagged: untagged, dry_run: false },
      });
      setNotice(t('scheduleSaved'));
      await loadSchedule();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy('');
    }
  };

  const run = async (dry: boolean) => {
    setBusy(dry ? 'dry' : 'now');
    setError('');
    setNotice('');
    try {
      const { id } = await create('/system/gc/schedule', {
        schedule: { type: 'Manual' },
        parameters: { delete_untagged: untagged, dry_run: dry },
      });
      setNotice(t(dry ? 'startedDry' : 'started', { id: id ?? '' }));
      setReload((n) => n + 1);
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy('');
    }
  };

  const stop = async (id: number) => {
    setError('');
    try {
      await put(`/system/gc/${id}`, {});
      setReload((n) => n + 1);
    } catch (err) {
      setError(explain(err));
    }
  };

  const typeLabel = (x: string) => t(x.toLowerCase() as 'none');

  return (
    <section>
      <h1>{t('title')}</h1>
      <h2>{t('gc')}</h2>
      <p class="muted">{t('intro')}</p>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      <form onSubmit={saveSchedule}>
        <fieldset>
          <legend>{t('schedule')}</legend>
          <div class="grid">
            <label>
              {t('scheduleType')}
              <select value={type} onChange={(e) => setType(val(e))}>
                {TYPES.map((x) => (
                  <option value={x}>{typeLabel(x)}</option>
                ))}
              </select>
            </label>
            {type === 'Custom' && (
              <>
                <label>
                  {t('cron')}
                  <input required value={cron} aria-describedby="gc-cron-help" placeholder="0 0 2 * * *" onInput={(e) => setCron(val(e))} />
                </label>
                <small class="field-help" id="gc-cron-help">{t('cronHelp')}</small>
              </>
            )}
          </div>
          {type !== 'None' && next && <p class="muted">{t('nextRun', { time: date(next) })}</p>}
          <label>
            <input type="checkbox" checked={untagged} onChange={(e) => setUntagged(checked(e))} />
            {t('deleteUntagged')}
          </label>
        </fieldset>
        <div class="button-row" style={{ display: 'flex', gap: '0.5rem', flexWrap: 'wrap' }}>
          <button type="submit" aria-busy={busy === 'save'} disabled={!!busy} style={{ width: 'auto' }}>
            {common('save')}
          </button>
          <button type="button" aria-busy={busy === 'now'} disabled={!!busy} onClick={() => run(false)} style={{ width: 'auto' }}>
            {t('gcNow')}
          </button>
          <button type="button" class="secondary" aria-busy={busy === 'dry'} disabled={!!busy} onClick={() => run(true)} style={{ width: 'auto' }}>
            {t('dryRun')}
          </button>
        </div>
      </form>

      <h2>{t('history')}</h2>
      <DataTable<GcRun>
        caption={t('history')}
        reloadKey={reload}
        rowKey={(r) => r.id}
        load={async ({ page: p, pageSize }) => {
          const d = await page<GcRun>('/system/gc', { page: p, page_size: pageSize });
          setActive(d.items.some((r) => ACTIVE.test(r.job_status ?? '')));
          return d;
        }}
        columns={[
          { label: t('id'), class: 'num', render: (r) => r.id },
          { label: t('trigger'), render: (r) => r.job_kind || '—' },
          { label: t('dry'), render: (r) => (params(r.job_parameters).dry_run ? common('yes') : common('no')) },
          { label: t('untagged'), render: (r) => (params(r.job_parameters).delete_untagged ? common('yes') : common('no')) },
          { label: common('status'), render: (r) => <Status value={r.job_status} /> },
          {
            label: t('progress'),
            render: (r) =>
              r.progress && (r.progress.tasks ?? 0) > 0 ? (
                <progress value={r.progress.done ?? 0} max={r.progress.tasks} aria-label={`${t('progress')} ${r.id}`} title={`${r.progress.done}/${r.progress.tasks}`} />
              ) : (
                <span class="muted">—</span>
              ),
          },
          { label: t('startTime'), render: (r) => date(r.creation_time) },
          { label: t('updateTime'), render: (r) => date(r.update_time) },
          {
            label: common('actions'),
            render: (r) => (
              <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                <button type="button" class="outline" aria-label={t('logButton', { id: r.id })} onClick={() => setLogOf(r.id)}>
                  {t('log')}
                </button>
                {ACTIVE.test(r.job_status ?? '') && (
                  <button type="button" class="outline secondary" aria-label={t('stopOf', { id: r.id })} onClick={() => stop(r.id)}>
                    {t('stop')}
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />
      <LogDialog title={logOf !== null ? t('logOf', { id: logOf }) : undefined} path={logOf !== null ? `/system/gc/${logOf}/log` : null} onClose={() => setLogOf(null)} />
    </section>
  );
}

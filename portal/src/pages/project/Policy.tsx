// A project's policies: tag immutability rules, and the tag retention
// policy (rules, schedule, runs real or dry, and each run's per-repository
// results: what was retained of how many).
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { DataTable } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { LogDialog, Status, checked, localPage, val } from '../../components/pol-Common';
import { ApiFailure, create, del, get, page, patch, put } from '../../lib/api';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import { ROLE } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: {
    title: 'Policy',
    immutability: 'Tag immutability',
    immutabilityIntro: 'Tags matched by an enabled rule cannot be overwritten or deleted.',
    retention: 'Tag retention',
    retentionIntro: 'Artifacts that no rule retains are deleted when retention runs (a dry run only reports them).',
    addRule: 'Add rule',
    editRule: 'Edit rule',
    newImmutableRule: 'New immutability rule',
    newRetentionRule: 'New retention rule',
    repositories: 'Repositories',
    tags: 'Tags',
    repoDecoration: 'For the repositories',
    repoPattern: 'Repository pattern',
    repoHelp: 'Doublestar pattern, e.g. ** (all), app/*, {a,b}/**.',
    tagDecoration: 'Tags',
    tagPattern: 'Tag pattern',
    tagHelp: 'e.g. ** (all), v*, release-{1,2}.*',
    matching: 'matching',
    excluding: 'excluding',
    untagged: 'Untagged artifacts',
    untaggedHelp: 'With "matching", also select artifacts without tags; with "excluding", also exclude them.',
    status: 'Status',
    enable: 'Enable',
    disable: 'Disable',
    enableRule: 'Enable rule {n}',
    disableRule: 'Disable rule {n}',
    editRuleN: 'Edit rule {n}',
    deleteRuleN: 'Delete rule {n}',
    deleteRuleTitle: 'Delete rule',
    ruleN: 'rule {n}',
    retain: 'Retain',
    template: 'Retain',
    count: 'Count',
    days: 'Days',
    rule: 'Rule',
    ruleText: '{repos} repositories {rpattern}: retain {what}, tags {tags} {tpattern}',
    schedule: 'Schedule',
    scheduleType: 'Schedule type',
    none: 'None',
    hourly: 'Hourly',
    daily: 'Daily',
    weekly: 'Weekly',
    custom: 'Custom',
    cron: 'Cron expression',
    cronHelp: 'Six fields: second minute hour day month weekday, e.g. 0 0 0 * * *',
    saveSchedule: 'Save schedule',
    scheduleSaved: 'Schedule saved.',
    runNow: 'Run now',
    dryRun: 'Dry run',
    runStarted: 'Retention run {id} started.',
    dryStarted: 'Dry run {id} started: it reports what would be deleted, and deletes nothing.',
    executions: 'Retention runs',
    id: 'ID',
    dry: 'Dry run',
    trigger: 'Trigger',
    startTime: 'Start time',
    endTime: 'End time',
    results: 'Results',
    resultsOf: 'Results of run {id}',
    stop: 'Stop',
    stopOf: 'Stop run {id}',
    repository: 'Repository',
    retained: 'Retained',
    retainedOf: '{retained} / {total}',
    log: 'Log',
    logOf: 'Log of {repo}',
    noPolicy: 'This project has no retention policy yet; adding a rule creates it.',
    readOnly: 'You can see these policies but not change them.',
  },
  zh: {
    title: '策略',
    immutability: '不可变 Tag',
    immutabilityIntro: '被已启用规则匹配的 Tag 不能被覆盖或删除。',
    retention: 'Tag 保留',
    retentionIntro: '保留策略运行时，没有任何规则保留的制品将被删除（模拟运行只报告，不删除）。',
    addRule: '添加规则',
    editRule: '编辑规则',
    newImmutableRule: '新建不可变规则',
    newRetentionRule: '新建保留规则',
    repositories: '仓库',
    tags: 'Tags',
    repoDecoration: '应用到仓库',
    repoPattern: '仓库匹配模式',
    repoHelp: 'doublestar 模式，例如 **（全部）、app/*、{a,b}/**。',
    tagDecoration: 'Tags',
    tagPattern: 'Tag 匹配模式',
    tagHelp: '例如 **（全部）、v*、release-{1,2}.*',
    matching: '匹配',
    excluding: '排除',
    untagged: '未打标签的制品',
    untaggedHelp: '“匹配”时同时选中没有 Tag 的制品；“排除”时同时排除它们。',
    status: '状态',
    enable: '启用',
    disable: '停用',
    enableRule: '启用规则 {n}',
    disableRule: '停用规则 {n}',
    editRuleN: '编辑规则 {n}',
    deleteRuleN: '删除规则 {n}',
    deleteRuleTitle: '删除规则',
    ruleN: '规则 {n}',
    retain: '保留',
    template: '保留',
    count: '个数',
    days: '天数',
    rule: '规则',
    ruleText: '{repos}仓库 {rpattern}：保留 {what}，Tag {tags} {tpattern}',
    schedule: '定时执行',
    scheduleType: '计划类型',
    none: '无',
    hourly: '每小时',
    daily: '每天',
    weekly: '每周',
    custom: '自定义',
    cron: 'Cron 表达式',
    cronHelp: '六个字段：秒 分 时 日 月 星期，例如 0 0 0 * * *',
    saveSchedule: '保存定时设置',
    scheduleSaved: '定时设置已保存。',
    runNow: '立即运行',
    dryRun: '模拟运行',
    runStarted: '保留任务 {id} 已开始。',
    dryStarted: '模拟运行 {id} 已开始：只报告将被删除的内容，不会删除。',
    executions: '保留任务记录',
    id: 'ID',
    dry: '模拟运行',
    trigger: '触发方式',
    startTime: '开始时间',
    endTime: '结束时间',
    results: '结果',
    resultsOf: '任务 {id} 的结果',
    stop: '停止',
    stopOf: '停止任务 {id}',
    repository: '仓库',
    retained: '保留数',
    retainedOf: '{retained} / {total}',
    log: '日志',
    logOf: '{repo} 的日志',
    noPolicy: '此项目还没有保留策略；添加规则时会自动创建。',
    readOnly: '您可以查看这些策略，但不能修改。',
  },
});

const templateZh: Record<string, string> = {
  latestPushedK: '最近推送的 # 个制品',
  latestPulledN: '最近拉取的 # 个制品',
  latestActiveK: '最近推送或拉取的 # 个制品',
  nDaysSinceLastPush: '最近 # 天内推送的制品',
  nDaysSinceLastPull: '最近 # 天内拉取的制品',
  lastXDays: '最近 # 天内推送的制品',
  always: '全部',
};

interface Selector {
  kind: string;
  decoration: string;
  pattern: string;
  extras?: string;
}

interface Rule {
  id?: number;
  priority?: number;
  disabled: boolean;
  action: string;
  template: string;
  params?: Record<string, unknown>;
  tag_selectors: Selector[];
  scope_selectors: Record<string, Selector[]>;
}

interface RetentionPolicy {
  id: number;
  algorithm: string;
  rules: Rule[];
  trigger?: { kind: string; settings: Record<string, unknown> };
  scope?: { level: string; ref: number };
}

interface Template {
  rule_template: string;
  display_text: string;
  action?: string;
  params?: { type: string; unit: string; required: boolean }[];
}

interface Execution {
  id: number;
  policy_id: number;
  status: string;
  trigger?: string;
  dry_run?: boolean;
  start_time?: string;
  end_time?: string;
}

interface Task {
  id: number;
  execution_id: number;
  repository: string;
  status: string;
  total?: number;
  retained?: number;
  start_time?: string;
  end_time?: string;
}

const ACTIVE = /^(pending|running|scheduled|inprogress)$/i;

// ---- selectors as text and form state ---------------------------------------

function selText(s: Selector[] | undefined, repo: boolean): string {
  if (!s || s.length === 0) return '**';
  return s
    .map((x) => {
      const excl = x.decoration === (repo ? 'repoExcludes' : 'excludes');
      return `${excl ? t('excluding') : t('matching')} ${x.pattern}`;
    })
    .join('; ');
}

interface SelectorForm {
  repoExclude: boolean;
  repoPattern: string;
  tagExclude: boolean;
  tagPattern: string;
  untagged: boolean;
}

function formOf(r: Rule | null): SelectorForm {
  const repo = r?.scope_selectors?.repository?.[0];
  const tag = r?.tag_selectors?.[0];
  let untagged = false;
  try {
    untagged = !!JSON.parse(tag?.extras || '{}')?.untagged;
  } catch {
    /* not JSON */
  }
  return {
    repoExclude: repo?.decoration === 'repoExcludes',
    repoPattern: repo?.pattern ?? '**',
    tagExclude: tag?.decoration === 'excludes',
    tagPattern: tag?.pattern ?? '**',
    untagged,
  };
}

function selectorsOf(f: SelectorForm, withExtras: boolean): Pick<Rule, 'tag_selectors' | 'scope_selectors'> {
  const tag: Selector = { kind: 'doublestar', decoration: f.tagExclude ? 'excludes' : 'matches', pattern: f.tagPattern.trim() };
  if (withExtras) tag.extras = JSON.stringify({ untagged: f.untagged });
  return {
    tag_selectors: [tag],
    scope_selectors: { repository: [{ kind: 'doublestar', decoration: f.repoExclude ? 'repoExcludes' : 'repoMatches', pattern: f.repoPattern.trim() }] },
  };
}

/** The repository and tag fields both rule dialogs share. */
function SelectorFields({ f, set, untagged, idp }: { f: SelectorForm; set: (f: SelectorForm) => void; untagged: boolean; idp: string }) {
  return (
    <>
      <div class="grid">
        <label>
          {t('repoDecoration')}
          <select value={f.repoExclude ? 'x' : 'm'} onChange={(e) => set({ ...f, repoExclude: val(e) === 'x' })}>
            <option value="m">{t('matching')}</option>
            <option value="x">{t('excluding')}</option>
          </select>
        </label>
        <div>
          <label>
            {t('repoPattern')}
            <input required value={f.repoPattern} aria-describedby={`${idp}-repo-help`} onInput={(e) => set({ ...f, repoPattern: val(e) })} />
          </label>
          <small class="field-help" id={`${idp}-repo-help`}>{t('repoHelp')}</small>
        </div>
      </div>
      <div class="grid">
        <label>
          {t('tagDecoration')}
          <select value={f.tagExclude ? 'x' : 'm'} onChange={(e) => set({ ...f, tagExclude: val(e) === 'x' })}>
            <option value="m">{t('matching')}</option>
            <option value="x">{t('excluding')}</option>
          </select>
        </label>
        <div>
          <label>
            {t('tagPattern')}
            <input required value={f.tagPattern} aria-describedby={`${idp}-tag-help`} onInput={(e) => set({ ...f, tagPattern: val(e) })} />
          </label>
          <small class="field-help" id={`${idp}-tag-help`}>{t('tagHelp')}</small>
        </div>
      </div>
      {untagged && (
        <>
        <label>
          <input type="checkbox" checked={f.untagged} aria-describedby={`${idp}-untagged-help`} onChange={(e) => set({ ...f, untagged: checked(e) })} />
          {t('untagged')}
        </label>
        <small id={`${idp}-untagged-help`}>{t('untaggedHelp')}</small>
        </>
      )}
    </>
  );
}

// ---- tag immutability -------------------------------------------------------

function ImmutableRuleDialog({ open, editing, base, onClose, onSaved }: { open: boolean; editing: Rule | null; base: string; onClose: () => void; onSaved: () => void }) {
  const [f, setF] = useState<SelectorForm>(formOf(null));
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (open) {
      setF(formOf(editing));
      setError('');
    }
  }, [open, editing?.id]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { action: 'immutable', template: 'immutable_template', ...selectorsOf(f, false) };
      if (editing?.id) await put(`${base}/${editing.id}`, { id: editing.id, disabled: editing.disabled, ...body });
      else await create(base, { disabled: false, ...body });
      onSaved();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onClose={onClose} title={editing ? t('editRule') : t('newImmutableRule')} wide>
      <form onSubmit={submit}>
        <SelectorFields f={f} set={setF} untagged={false} idp="imm" />
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} label={editing ? common('save') : common('add')} />
      </form>
    </Dialog>
  );
}

function Immutability({ project, canEdit }: { project: ProjectProps['project']; canEdit: boolean }) {
  const base = `/projects/${project.project_id}/immutabletagrules`;
  const [reload, setReload] = useState(0);
  const [dialog, setDialog] = useState<{ editing: Rule | null } | null>(null);
  const [deleting, setDeleting] = useState<Rule | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const act = async (f: () => Promise<unknown>) => {
    setError('');
    try {
      await f();
      setReload((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    }
  };
  return (
    <section aria-labelledby="pol-imm">
      <h3 id="pol-imm">{t('immutability')}</h3>
      <p class="muted">{t('immutabilityIntro')}</p>
      <Alert>{error}</Alert>
      <DataTable<Rule>
        caption={t('immutability')}
        reloadKey={reload}
        rowKey={(r) => r.id ?? 0}
        toolbar={
          canEdit && (
            <button type="button" onClick={() => setDialog({ editing: null })}>
              + {t('addRule')}
            </button>
          )
        }
        load={({ page: p, pageSize }) => page<Rule>(base, { page: p, page_size: pageSize })}
        columns={[
          { label: t('id'), class: 'num', render: (r) => r.id },
          { label: t('repositories'), render: (r) => <code>{selText(r.scope_selectors?.repository, true)}</code> },
          { label: t('tags'), render: (r) => <code>{selText(r.tag_selectors, false)}</code> },
          { label: t('status'), render: (r) => (r.disabled ? <span class="muted">{common('disabled')}</span> : <span class="status-ok">{common('enabled')}</span>) },
          ...(canEdit
            ? [
                {
                  label: common('actions'),
                  render: (r: Rule) => (
                    <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                      <button
                        type="button"
                        class="outline"
                        aria-label={r.disabled ? t('enableRule', { n: r.id ?? '' }) : t('disableRule', { n: r.id ?? '' })}
                        onClick={() => act(() => put(`${base}/${r.id}`, { id: r.id, disabled: !r.disabled }))}
                      >
                        {r.disabled ? t('enable') : t('disable')}
                      </button>
                      <button type="button" class="outline" aria-label={t('editRuleN', { n: r.id ?? '' })} onClick={() => setDialog({ editing: r })}>
                        {common('edit')}
                      </button>
                      <button type="button" class="outline danger" aria-label={t('deleteRuleN', { n: r.id ?? '' })} onClick={() => setDeleting(r)}>
                        {common('delete')}
                      </button>
                    </div>
                  ),
                },
              ]
            : []),
        ]}
      />
      <ImmutableRuleDialog
        open={!!dialog}
        editing={dialog?.editing ?? null}
        base={base}
        onClose={() => setDialog(null)}
        onSaved={() => {
          setDialog(null);
          setReload((n) => n + 1);
        }}
      />
      <Confirm
        open={!!deleting}
        title={t('deleteRuleTitle')}
        message={common('deleteConfirm', { what: t('ruleN', { n: deleting?.id ?? '' }) })}
        busy={busy}
        onConfirm={async () => {
          setBusy(true);
          await act(() => del(`${base}/${deleting?.id}`));
          setBusy(false);
          setDeleting(null);
        }}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

// ---- tag retention ----------------------------------------------------------

function templateText(tpl: Template | undefined, id: string, n?: unknown): string {
  const raw = (document.documentElement.lang === 'zh-CN' ? templateZh[id] : undefined) ?? tpl?.display_text ?? id;
  return n === undefined || n === null ? raw : raw.replace('#', String(n));
}

function RetentionRuleDialog({
  open,
  editing,
  templates,
  onClose,
  onSave,
}: {
  open: boolean;
  editing: Rule | null;
  templates: Template[];
  onClose: () => void;
  onSave: (r: Rule) => Promise<void>;
}) {
  const [f, setF] = useState<SelectorForm>(formOf(null));
  const [tpl, setTpl] = useState('latestPushedK');
  const [n, setN] = useState('10');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!open) return;
    setF(formOf(editing));
    const id = editing?.template || templates[0]?.rule_template || 'latestPushedK';
    setTpl(id);
    const p = editing?.params?.[id];
    setN(p === undefined ? '10' : String(p));
    setError('');
  }, [open, editing]);
  const current = templates.find((x) => x.rule_template === tpl);
  const param = current?.params?.[0];
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await onSave({
        ...(editing ?? {}),
        disabled: editing?.disabled ?? false,
        action: 'retain',
        template: tpl,
        params: param ? { [tpl]: Number(n) } : {},
        ...selectorsOf(f, true),
      });
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onClose={onClose} title={editing ? t('editRule') : t('newRetentionRule')} wide>
      <form onSubmit={submit}>
        <div class="grid">
          <label>
            {t('template')}
            <select value={tpl} onChange={(e) => setTpl(val(e))}>
              {templates.map((x) => (
                <option value={x.rule_template}>{templateText(x, x.rule_template)}</option>
              ))}
            </select>
          </label>
          {param && (
            <label>
              {param.unit === 'DAYS' ? t('days') : t('count')}
              <input type="number" required min={0} step={1} value={n} onInput={(e) => setN(val(e))} />
            </label>
          )}
        </div>
        <SelectorFields f={f} set={setF} untagged idp="ret" />
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} label={editing ? common('save') : common('add')} />
      </form>
    </Dialog>
  );
}

const PRESETS: [string, string][] = [
  ['none', ''],
  ['hourly', '0 0 * * * *'],
  ['daily', '0 0 0 * * *'],
  ['weekly', '0 0 0 * * 0'],
];

function presetOf(cron: string): string {
  return PRESETS.find((p) => p[1] === cron)?.[0] ?? 'custom';
}

function RunResults({ policyId, run, refresh, onClose }: { policyId: number; run: Execution | null; refresh: unknown; onClose: () => void }) {
  const [log, setLog] = useState<Task | null>(null);
  return (
    <>
      <Dialog open={!!run} onClose={onClose} title={t('resultsOf', { id: run?.id ?? '' })} wide>
        {run && (
          <>
            <p>
              <Status value={run.status} /> · {run.dry_run ? t('dryRun') : t('runNow')} · {date(run.start_time)}
            </p>
            <DataTable<Task>
              caption={t('resultsOf', { id: run.id })}
              reloadKey={`${run.status}-${refresh}`}
              rowKey={(x) => x.id}
              load={({ page: p, pageSize }) => page<Task>(`/retentions/${policyId}/executions/${run.id}/tasks`, { page: p, page_size: pageSize })}
              columns={[
                { label: t('repository'), render: (x) => x.repository },
                { label: common('status'), render: (x) => <Status value={x.status} /> },
                { label: t('retained'), class: 'num', render: (x) => t('retainedOf', { retained: x.retained ?? 0, total: x.total ?? 0 }) },
                { label: t('startTime'), render: (x) => date(x.start_time) },
                { label: t('endTime'), render: (x) => date(x.end_time) },
                {
                  label: t('log'),
                  render: (x) => (
                    <button type="button" class="outline" aria-label={t('logOf', { repo: x.repository })} onClick={() => setLog(x)}>
                      {t('log')}
                    </button>
                  ),
                },
              ]}
            />
          </>
        )}
      </Dialog>
      <LogDialog
        title={log ? t('logOf', { repo: log.repository }) : undefined}
        path={log && run ? `/retentions/${policyId}/executions/${run.id}/tasks/${log.id}` : null}
        onClose={() => setLog(null)}
      />
    </>
  );
}

function Retention({ project, canEdit }: { project: ProjectProps['project']; canEdit: boolean }) {
  const [policy, setPolicy] = useState<RetentionPolicy | null>(null);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [dialog, setDialog] = useState<{ index: number } | null>(null);
  const [deleting, setDeleting] = useState<number | null>(null);
  const [preset, setPreset] = useState('none');
  const [cron, setCron] = useState('');
  const [busy, setBusy] = useState('');
  const [reloadRuns, setReloadRuns] = useState(0);
  const [active, setActive] = useState(false);
  const [results, setResults] = useState<Execution | null>(null);
  const [shown, setShown] = useState<Execution[]>([]);

  const load = async () => {
    try {
      // Harbor's `metadata.retention_id`; a project without one gets its
      // policy created with the first saved rule or schedule (id 0 until then).
      const id = Number(project.metadata?.retention_id ?? 0);
      if (!(id > 0)) {
        if (canEdit) setPolicy({ id: 0, algorithm: 'or', rules: [], trigger: { kind: 'Schedule', settings: { cron: '' } }, scope: { level: 'project', ref: project.project_id } } as RetentionPolicy);
        else setNotice(t('noPolicy'));
        return;
      }
      const p = await get<RetentionPolicy>(`/retentions/${id}`);
      p.rules = p.rules ?? [];
      setPolicy(p);
      const c = String(p.trigger?.settings?.cron ?? '');
      setCron(c);
      setPreset(presetOf(c));
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => {
    get<{ templates: Template[] }>('/retentions/metadatas').then((m) => setTemplates(m.templates ?? []), (e) => setError(explain(e)));
    load();
  }, [project.project_id]);
  useEffect(() => {
    if (!active) return;
    const h = setInterval(() => setReloadRuns((n) => n + 1), 4000);
    return () => clearInterval(h);
  }, [active]);

  /** Saves the policy with these rules and this cron. */
  const save = async (rules: Rule[], cronValue: string) => {
    if (!policy) return;
    const next: RetentionPolicy = {
      id: policy.id,
      algorithm: policy.algorithm || 'or',
      rules,
      trigger: { kind: 'Schedule', settings: { ...(policy.trigger?.settings ?? {}), cron: cronValue } },
      scope: { level: 'project', ref: project.project_id },
    };
    let id = policy.id;
    if (!id) {
      const { id: created } = await create('/retentions', { ...next, id: undefined });
      if (!created) throw new ApiFailure(500, '', '');
      id = created;
    } else {
      await put(`/retentions/${id}`, next);
    }
    const fresh = await get<RetentionPolicy>(`/retentions/${id}`);
    fresh.rules = fresh.rules ?? [];
    setPolicy(fresh);
  };

  const act = async (f: () => Promise<unknown>, ok?: string) => {
    setError('');
    setNotice('');
    try {
      await f();
      if (ok) setNotice(ok);
    } catch (e) {
      setError(explain(e));
    }
  };

  const run = (dry: boolean) =>
    act(async () => {
      if (!policy) return;
      setBusy(dry ? 'dry' : 'run');
      try {
        const { id } = await create(`/retentions/${policy.id}/executions`, { dry_run: dry });
        setNotice(t(dry ? 'dryStarted' : 'runStarted', { id: id ?? '' }));
        setReloadRuns((n) => n + 1);
      } finally {
        setBusy('');
      }
    });

  const rules = policy?.rules ?? [];
  const tplOf = (id: string) => templates.find((x) => x.rule_template === id);
  const ruleLine = (r: Rule) =>
    t('ruleText', {
      repos: r.scope_selectors?.repository?.[0]?.decoration === 'repoExcludes' ? t('excluding') : t('matching'),
      rpattern: r.scope_selectors?.repository?.map((s) => s.pattern).join(', ') || '**',
      what: templateText(tplOf(r.template), r.template, r.params?.[r.template] as number | undefined),
      tags: r.tag_selectors?.[0]?.decoration === 'excludes' ? t('excluding') : t('matching'),
      tpattern: r.tag_selectors?.map((s) => s.pattern).join(', ') || '**',
    });
  const indexed = rules.map((r, i) => ({ r, i }));

  return (
    <section aria-labelledby="pol-ret">
      <h3 id="pol-ret">{t('retention')}</h3>
      <p class="muted">{t('retentionIntro')}</p>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      {!policy && !error && !notice && <p aria-busy="true">{common('loading')}</p>}
      {policy && (
        <>
          <DataTable<{ r: Rule; i: number }>
            caption={t('retention')}
            reloadKey={policy}
            rowKey={(x) => x.i}
            toolbar={
              canEdit && (
                <button type="button" disabled={rules.length >= 15} onClick={() => setDialog({ index: -1 })}>
                  + {t('addRule')}
                </button>
              )
            }
            load={async (req) => localPage(indexed, req)}
            columns={[
              { label: t('rule'), class: 'num', render: (x) => x.i + 1 },
              { label: common('description'), render: (x) => ruleLine(x.r) },
              { label: t('status'), render: (x) => (x.r.disabled ? <span class="muted">{common('disabled')}</span> : <span class="status-ok">{common('enabled')}</span>) },
              ...(canEdit
                ? [
                    {
                      label: common('actions'),
                      render: (x: { r: Rule; i: number }) => (
                        <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                          <button
                            type="button"
                            class="outline"
                            aria-label={x.r.disabled ? t('enableRule', { n: x.i + 1 }) : t('disableRule', { n: x.i + 1 })}
                            onClick={() => act(() => save(rules.map((r, i) => (i === x.i ? { ...r, disabled: !r.disabled } : r)), cron))}
                          >
                            {x.r.disabled ? t('enable') : t('disable')}
                          </button>
                          <button type="button" class="outline" aria-label={t('editRuleN', { n: x.i + 1 })} onClick={() => setDialog({ index: x.i })}>
                            {common('edit')}
                          </button>
                          <button type="button" class="outline danger" aria-label={t('deleteRuleN', { n: x.i + 1 })} onClick={() => setDeleting(x.i)}>
                            {common('delete')}
                          </button>
                        </div>
                      ),
                    },
                  ]
                : []),
            ]}
          />

          <form
            onSubmit={(e) => {
              e.preventDefault();
              const c = preset === 'custom' ? cron.trim() : PRESETS.find((p) => p[0] === preset)?.[1] ?? '';
              act(async () => {
                setBusy('schedule');
                try {
                  await save(rules, c);
                  setCron(c);
                } finally {
                  setBusy('');
                }
              }, t('scheduleSaved'));
            }}
          >
            <fieldset disabled={!canEdit}>
              <legend>{t('schedule')}</legend>
              <div class="grid">
                <label>
                  {t('scheduleType')}
                  <select value={preset} onChange={(e) => setPreset(val(e))}>
                    {[...PRESETS.map((p) => p[0]), 'custom'].map((p) => (
                      <option value={p}>{t(p as 'none')}</option>
                    ))}
                  </select>
                </label>
                {preset === 'custom' && (
                  <>
                    <label>
                      {t('cron')}
                      <input required value={cron} placeholder="0 0 0 * * *" aria-describedby="ret-cron-help" onInput={(e) => setCron(val(e))} />
                    </label>
                    <small class="field-help" id="ret-cron-help">{t('cronHelp')}</small>
                  </>
                )}
              </div>
            </fieldset>
            {canEdit && (
              <div style={{ display: 'flex', gap: '0.5rem', flexWrap: 'wrap' }}>
                <button type="submit" class="outline" aria-busy={busy === 'schedule'} disabled={!!busy} style={{ width: 'auto' }}>
                  {t('saveSchedule')}
                </button>
                <button type="button" aria-busy={busy === 'run'} disabled={!!busy || !policy.id} onClick={() => run(false)} style={{ width: 'auto' }}>
                  {t('runNow')}
                </button>
                <button type="button" class="secondary" aria-busy={busy === 'dry'} disabled={!!busy || !policy.id} onClick={() => run(true)} style={{ width: 'auto' }}>
                  {t('dryRun')}
                </button>
              </div>
            )}
          </form>

          <h4>{t('executions')}</h4>
          <DataTable<Execution>
            caption={t('executions')}
            reloadKey={reloadRuns}
            rowKey={(x) => x.id}
            load={async ({ page: p, pageSize }) => {
              if (!policy.id) return { items: [], total: 0 };
              const d = await page<Execution>(`/retentions/${policy.id}/executions`, { page: p, page_size: pageSize });
              setActive(d.items.some((x) => ACTIVE.test(x.status)));
              setShown(d.items);
              return d;
            }}
            columns={[
              { label: t('id'), class: 'num', render: (x) => x.id },
              { label: common('status'), render: (x) => <Status value={x.status} /> },
              { label: t('dry'), render: (x) => (x.dry_run ? common('yes') : common('no')) },
              { label: t('trigger'), render: (x) => x.trigger ?? '—' },
              { label: t('startTime'), render: (x) => date(x.start_time) },
              { label: t('endTime'), render: (x) => date(x.end_time) },
              {
                label: common('actions'),
                render: (x) => (
                  <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                    <button type="button" class="outline" aria-label={t('resultsOf', { id: x.id })} onClick={() => setResults(x)}>
                      {t('results')}
                    </button>
                    {canEdit && ACTIVE.test(x.status) && (
                      <button
                        type="button"
                        class="outline secondary"
                        aria-label={t('stopOf', { id: x.id })}
                        onClick={() => act(async () => {
                          await patch(`/retentions/${policy.id}/executions/${x.id}`, { action: 'stop' });
                          setReloadRuns((n) => n + 1);
                        })}
                      >
                        {t('stop')}
                      </button>
                    )}
                  </div>
                ),
              },
            ]}
          />
          <RetentionRuleDialog
            open={!!dialog}
            editing={dialog && dialog.index >= 0 ? rules[dialog.index] : null}
            templates={templates}
            onClose={() => setDialog(null)}
            onSave={async (r) => {
              const next = dialog && dialog.index >= 0 ? rules.map((x, i) => (i === dialog.index ? r : x)) : [...rules, r];
              await save(next, cron);
              setDialog(null);
            }}
          />
          <Confirm
            open={deleting !== null}
            title={t('deleteRuleTitle')}
            message={common('deleteConfirm', { what: t('ruleN', { n: (deleting ?? 0) + 1 }) })}
            busy={busy === 'delete'}
            onConfirm={async () => {
              setBusy('delete');
              await act(() => save(rules.filter((_, i) => i !== deleting), cron));
              setBusy('');
              setDeleting(null);
            }}
            onClose={() => setDeleting(null)}
          />
          <RunResults policyId={policy.id} run={results && (shown.find((x) => x.id === results.id) ?? results)} refresh={reloadRuns} onClose={() => setResults(null)} />
        </>
      )}
    </section>
  );
}

export function ProjectPolicy({ project, role }: ProjectProps) {
  const canEdit = role === ROLE.projectAdmin || role === ROLE.maintainer;
  return (
    <section>
      <h2>{t('title')}</h2>
      {!canEdit && <p class="muted">{t('readOnly')}</p>}
      <Immutability project={project} canEdit={canEdit} />
      <Retention project={project} canEdit={canEdit} />
    </section>
  );
}

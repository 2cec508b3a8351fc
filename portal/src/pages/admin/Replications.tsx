// Replications: rules that copy artifacts to (push) or from (pull) a
// registry endpoint, their executions with progress, and each execution's
// tasks with their logs. System admins only.
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { DataTable, fuzzy } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { LogDialog, Status, checked, val } from '../../components/pol-Common';
import { create, del, get, page, post, put } from '../../lib/api';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import type { Registry } from './Registries';

const t = messages({
  en: {
    title: 'Replications',
    rules: 'Replication rules',
    newRule: 'New rule',
    editRule: 'Edit rule',
    search: 'Search rules by name',
    name: 'Name',
    description: 'Description',
    mode: 'Replication mode',
    push: 'Push-based',
    pull: 'Pull-based',
    source: 'Source registry',
    destination: 'Destination registry',
    local: 'Local',
    nameFilter: 'Name filter',
    nameFilterHelp: 'Repositories to replicate, e.g. library/** (empty: all).',
    tagFilter: 'Tag filter',
    tagFilterHelp: 'Tags to replicate, e.g. v* (empty: all).',
    tagDecoration: 'Tag filter applies to',
    matching: 'matching',
    excluding: 'excluding',
    destNamespace: 'Destination namespace',
    destNamespaceHelp: 'Empty: keep the source repository path.',
    flattening: 'Flattening',
    flatDefault: 'Replace the project (default)',
    flat0: 'No flattening (prefix the namespace)',
    flat1: 'Flatten 1 level',
    flat2: 'Flatten 2 levels',
    flat3: 'Flatten 3 levels',
    trigger: 'Trigger mode',
    manual: 'Manual',
    scheduled: 'Scheduled',
    event_based: 'Event Based',
    cron: 'Cron expression',
    cronHelp: 'Six fields: second minute hour day month weekday, e.g. 0 0 3 * * *',
    deletion: 'Delete remote resources when locally deleted',
    override: 'Override',
    overrideHelp: 'Replace an artifact at the destination that has the same name.',
    enabled: 'Enable rule',
    status: 'Status',
    srcReg: 'Source',
    destReg: 'Destination',
    replicate: 'Replicate',
    replicateOf: 'Replicate {name}',
    started: 'Replication of {name} started.',
    executionsOf: 'Executions of {name}',
    showExecutions: 'Executions',
    showExecutionsOf: 'Executions of rule {name}',
    allExecutions: 'Executions',
    showAll: 'Show all executions',
    editOf: 'Edit {name}',
    deleteOf: 'Delete {name}',
    deleteTitle: 'Delete rule',
    id: 'ID',
    progress: 'Progress',
    progressOf: 'Progress of execution {id}',
    succeeded: '{done} of {total} succeeded',
    failed: '{n} failed',
    startTime: 'Start time',
    endTime: 'End time',
    tasks: 'Tasks',
    tasksOf: 'Tasks of execution {id}',
    stop: 'Stop',
    stopOf: 'Stop execution {id}',
    operation: 'Operation',
    resourceType: 'Resource type',
    srcResource: 'Source resource',
    dstResource: 'Destination resource',
    log: 'Log',
    logOf: 'Log of task {id}',
    taskLog: 'Log of task {id}',
  },
  zh: {
    title: '复制管理',
    rules: '复制规则',
    newRule: '新建规则',
    editRule: '编辑规则',
    search: '按名称搜索规则',
    name: '名称',
    description: '描述',
    mode: '复制模式',
    push: '基于推送',
    pull: '基于拉取',
    source: '源仓库',
    destination: '目标仓库',
    local: '本地',
    nameFilter: '名称过滤',
    nameFilterHelp: '要复制的仓库，例如 library/**（留空：全部）。',
    tagFilter: 'Tag 过滤',
    tagFilterHelp: '要复制的 Tag，例如 v*（留空：全部）。',
    tagDecoration: 'Tag 过滤方式',
    matching: '匹配',
    excluding: '排除',
    destNamespace: '目标命名空间',
    destNamespaceHelp: '留空：保留源仓库路径。',
    flattening: '仓库扁平化',
    flatDefault: '替换项目（默认）',
    flat0: '不扁平化（加上命名空间前缀）',
    flat1: '扁平化 1 级',
    flat2: '扁平化 2 级',
    flat3: '扁平化 3 级',
    trigger: '触发模式',
    manual: '手动',
    scheduled: '定时',
    event_based: '事件驱动',
    cron: 'Cron 表达式',
    cronHelp: '六个字段：秒 分 时 日 月 星期，例如 0 0 3 * * *',
    deletion: '本地删除时同时删除远程资源',
    override: '覆盖',
    overrideHelp: '替换目标端同名的制品。',
    enabled: '启用规则',
    status: '状态',
    srcReg: '源',
    destReg: '目标',
    replicate: '复制',
    replicateOf: '复制 {name}',
    started: '{name} 的复制已开始。',
    executionsOf: '{name} 的执行记录',
    showExecutions: '执行记录',
    showExecutionsOf: '规则 {name} 的执行记录',
    allExecutions: '执行记录',
    showAll: '显示全部执行记录',
    editOf: '编辑 {name}',
    deleteOf: '删除 {name}',
    deleteTitle: '删除规则',
    id: 'ID',
    progress: '进度',
    progressOf: '执行 {id} 的进度',
    succeeded: '{total} 个中 {done} 个成功',
    failed: '{n} 个失败',
    startTime: '开始时间',
    endTime: '结束时间',
    tasks: '任务',
    tasksOf: '执行 {id} 的任务',
    stop: '停止',
    stopOf: '停止执行 {id}',
    operation: '操作',
    resourceType: '资源类型',
    srcResource: '源资源',
    dstResource: '目标资源',
    log: '日志',
    logOf: '任务 {id} 的日志',
    taskLog: '任务 {id} 的日志',
  },
});

interface Filter {
  type: string;
  value: unknown;
  decoration?: string;
}

interface Policy {
  id: number;
  name: string;
  description?: string;
  src_registry?: { id?: number; name?: string } | null;
  dest_registry?: { id?: number; name?: string } | null;
  dest_namespace?: string;
  dest_namespace_replace_count?: number;
  trigger?: { type?: string; trigger_settings?: { cron?: string } };
  filters?: Filter[] | null;
  replicate_deletion?: boolean;
  override?: boolean;
  enabled?: boolean;
  creation_time?: string;
}

interface Execution {
  id: number;
  policy_id: number;
  status: string;
  status_text?: string;
  trigger?: string;
  start_time?: string;
  end_time?: string;
  total?: number;
  failed?: number;
  succeed?: number;
  in_progress?: number;
  stopped?: number;
}

interface Task {
  id: number;
  execution_id: number;
  status: string;
  operation?: string;
  resource_type?: string;
  src_resource?: string;
  dst_resource?: string;
  start_time?: string;
  end_time?: string;
}

const ACTIVE = /^(inprogress|in_progress|pending|running)$/i;

function RuleDialog({ open, editing, onClose, onSaved }: { open: boolean; editing: Policy | null; onClose: () => void; onSaved: () => void }) {
  const [registries, setRegistries] = useState<Registry[]>([]);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [mode, setMode] = useState<'push' | 'pull'>('push');
  const [remote, setRemote] = useState('');
  const [nameFilter, setNameFilter] = useState('');
  const [tagFilter, setTagFilter] = useState('');
  const [tagDecoration, setTagDecoration] = useState('matches');
  const [namespace, setNamespace] = useState('');
  const [replaceCount, setReplaceCount] = useState('-1');
  const [trigger, setTrigger] = useState('manual');
  const [cron, setCron] = useState('');
  const [deletion, setDeletion] = useState(false);
  const [override, setOverride] = useState(true);
  const [enabled, setEnabled] = useState(true);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!open) return;
    setError('');
    const p = editing;
    const pull = !!p?.src_registry?.id;
    setName(p?.name ?? '');
    setDescription(p?.description ?? '');
    setMode(pull ? 'pull' : 'push');
    setRemote(String((pull ? p?.src_registry?.id : p?.dest_registry?.id) || ''));
    const nf = p?.filters?.find((f) => f.type === 'name');
    const tf = p?.filters?.find((f) => f.type === 'tag');
    setNameFilter(typeof nf?.value === 'string' ? nf.value : '');
    setTagFilter(typeof tf?.value === 'string' ? tf.value : '');
    setTagDecoration(tf?.decoration || 'matches');
    setNamespace(p?.dest_namespace ?? '');
    setReplaceCount(String(p?.dest_namespace_replace_count ?? -1));
    setTrigger(p?.trigger?.type || 'manual');
    setCron(p?.trigger?.trigger_settings?.cron ?? '');
    setDeletion(!!p?.replicate_deletion);
    setOverride(p?.override ?? true);
    setEnabled(p?.enabled ?? true);
    get<Registry[]>('/registries', { page: 1, page_size: 100 }).then(
      (r) => {
        setRegistries(r ?? []);
        if (!p && r?.length) setRemote((x) => x || String(r[0].id));
      },
      (e) => setError(explain(e)),
    );
  }, [open, editing?.id]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const filters: Filter[] = [];
    if (nameFilter.trim()) filters.push({ type: 'name', value: nameFilter.trim() });
    if (tagFilter.trim()) filters.push({ type: 'tag', value: tagFilter.trim(), decoration: tagDecoration });
    // Keep filters this dialog does not edit (label, resource).
    for (const f of editing?.filters ?? []) if (f.type !== 'name' && f.type !== 'tag') filters.push(f);
    const reg = remote ? { id: Number(remote) } : null;
    const body = {
      name: name.trim(),
      description,
      src_registry: mode === 'pull' ? reg : null,
      dest_registry: mode === 'push' ? reg : null,
      dest_namespace: namespace.trim(),
      dest_namespace_replace_count: Number(replaceCount),
      filters,
      trigger: { type: trigger, trigger_settings: { cron: trigger === 'scheduled' ? cron.trim() : '' } },
      replicate_deletion: deletion,
      override,
      enabled,
    };
    try {
      if (editing) await put(`/replication/policies/${editing.id}`, { id: editing.id, ...body });
      else await post('/replication/policies', body);
      onSaved();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open={open} onClose={onClose} title={editing ? t('editRule') : t('newRule')} wide>
      <form onSubmit={submit}>
        <label>
          {t('name')}
          <input required maxLength={255} value={name} onInput={(e) => setName(val(e))} />
        </label>
        <label>
          {t('description')}
          <input value={description} onInput={(e) => setDescription(val(e))} />
        </label>
        <fieldset>
          <legend>{t('mode')}</legend>
          <label>
            <input type="radio" name="rep-mode" value="push" checked={mode === 'push'} onChange={() => setMode('push')} />
            {t('push')}
          </label>
          <label>
            <input type="radio" name="rep-mode" value="pull" checked={mode === 'pull'} onChange={() => setMode('pull')} />
            {t('pull')}
          </label>
        </fieldset>
        <label>
          {mode === 'pull' ? t('source') : t('destination')}
          <select required value={remote} onChange={(e) => setRemote(val(e))}>
            <option value="" disabled>
              —
            </option>
            {registries.map((r) => (
              <option value={r.id}>
                {r.name} ({r.url})
              </option>
            ))}
          </select>
        </label>
        <div class="grid">
          <div>
            <label>
              {t('nameFilter')}
              <input value={nameFilter} placeholder="library/**" aria-describedby="rep-nf-help" onInput={(e) => setNameFilter(val(e))} />
            </label>
            <small class="field-help" id="rep-nf-help">{t('nameFilterHelp')}</small>
          </div>
          <div>
            <label>
              {t('tagFilter')}
              <input value={tagFilter} placeholder="v*" aria-describedby="rep-tf-help" onInput={(e) => setTagFilter(val(e))} />
            </label>
            <small class="field-help" id="rep-tf-help">{t('tagFilterHelp')}</small>
          </div>
          <label>
            {t('tagDecoration')}
            <select value={tagDecoration} onChange={(e) => setTagDecoration(val(e))}>
              <option value="matches">{t('matching')}</option>
              <option value="excludes">{t('excluding')}</option>
            </select>
          </label>
        </div>
        <div class="grid">
          <div>
            <label>
              {t('destNamespace')}
              <input value={namespace} aria-describedby="rep-ns-help" onInput={(e) => setNamespace(val(e))} />
            </label>
            <small class="field-help" id="rep-ns-help">{t('destNamespaceHelp')}</small>
          </div>
          <label>
            {t('flattening')}
            <select value={replaceCount} onChange={(e) => setReplaceCount(val(e))}>
              <option value="-1">{t('flatDefault')}</option>
              <option value="0">{t('flat0')}</option>
              <option value="1">{t('flat1')}</option>
              <option value="2">{t('flat2')}</option>
              <option value="3">{t('flat3')}</option>
            </select>
          </label>
        </div>
        <div class="grid">
          <label>
            {t('trigger')}
            <select value={trigger} onChange={(e) => setTrigger(val(e))}>
              <option value="manual">{t('manual')}</option>
              <option value="scheduled">{t('scheduled')}</option>
              <option value="event_based">{t('event_based')}</option>
            </select>
          </label>
          {trigger === 'scheduled' && (
            <>
              <label>
                {t('cron')}
                <input required value={cron} placeholder="0 0 3 * * *" aria-describedby="rep-cron-help" onInput={(e) => setCron(val(e))} />
              </label>
              <small class="field-help" id="rep-cron-help">{t('cronHelp')}</small>
            </>
          )}
        </div>
        {trigger === 'event_based' && (
          <label>
            <input type="checkbox" checked={deletion} onChange={(e) => setDeletion(checked(e))} />
            {t('deletion')}
          </label>
        )}
        <label>
          <input type="checkbox" checked={override} aria-describedby="rep-ov-help" onChange={(e) => setOverride(checked(e))} />
          {t('override')}
        </label>
        <small id="rep-ov-help">{t('overrideHelp')}</small>
        <label>
          <input type="checkbox" role="switch" checked={enabled} onChange={(e) => setEnabled(checked(e))} />
          {t('enabled')}
        </label>
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} label={editing ? common('save') : common('create')} />
      </form>
    </Dialog>
  );
}

function TasksDialog({ execution, onClose, onLog }: { execution: Execution | null; onClose: () => void; onLog: (task: Task) => void }) {
  return (
    <Dialog open={!!execution} onClose={onClose} title={t('tasksOf', { id: execution?.id ?? '' })} wide>
      {execution && (
        <DataTable<Task>
          caption={t('tasksOf', { id: execution.id })}
          rowKey={(x) => x.id}
          load={({ page: p, pageSize }) => page<Task>(`/replication/executions/${execution.id}/tasks`, { page: p, page_size: pageSize })}
          columns={[
            { label: t('id'), class: 'num', render: (x) => x.id },
            { label: t('operation'), render: (x) => x.operation ?? '—' },
            { label: t('resourceType'), render: (x) => x.resource_type ?? '—' },
            { label: t('srcResource'), render: (x) => <code>{x.src_resource}</code> },
            { label: t('dstResource'), render: (x) => <code>{x.dst_resource}</code> },
            { label: t('status'), render: (x) => <Status value={x.status} /> },
            { label: t('startTime'), render: (x) => date(x.start_time) },
            { label: t('endTime'), render: (x) => date(x.end_time) },
            {
              label: t('log'),
              render: (x) => (
                <button type="button" class="outline" aria-label={t('taskLog', { id: x.id })} onClick={() => onLog(x)}>
                  {t('log')}
                </button>
              ),
            },
          ]}
        />
      )}
    </Dialog>
  );
}

export function Replications(_props: Record<string, unknown>) {
  const [dialog, setDialog] = useState<{ editing: Policy | null } | null>(null);
  const [deleting, setDeleting] = useState<Policy | null>(null);
  const [selected, setSelected] = useState<Policy | null>(null);
  const [reloadRules, setReloadRules] = useState(0);
  const [reloadExec, setReloadExec] = useState(0);
  const [active, setActive] = useState(false);
  const [tasksOf, setTasksOf] = useState<Execution | null>(null);
  const [logOf, setLogOf] = useState<Task | null>(null);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!active) return;
    const h = setInterval(() => setReloadExec((n) => n + 1), 4000);
    return () => clearInterval(h);
  }, [active]);

  const replicate = async (p: Policy) => {
    setError('');
    setNotice('');
    try {
      await create('/replication/executions', { policy_id: p.id });
      setNotice(t('started', { name: p.name }));
      setSelected(p);
      setReloadExec((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    }
  };

  const stop = async (x: Execution) => {
    setError('');
    try {
      await put(`/replication/executions/${x.id}`, {});
      setReloadExec((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    }
  };

  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    setError('');
    try {
      await del(`/replication/policies/${deleting.id}`);
      if (selected?.id === deleting.id) setSelected(null);
      setReloadRules((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };

  const regName = (r: Policy['src_registry']) => (r?.id ? r.name ?? `#${r.id}` : t('local'));

  return (
    <section>
      <h1>{t('title')}</h1>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      <h2>{t('rules')}</h2>
      <DataTable<Policy>
        caption={t('rules')}
        searchLabel={t('search')}
        reloadKey={reloadRules}
        rowKey={(p) => p.id}
        toolbar={
          <button type="button" onClick={() => setDialog({ editing: null })}>
            + {t('newRule')}
          </button>
        }
        load={({ page: p, pageSize, sort, search }) => page<Policy>('/replication/policies', { page: p, page_size: pageSize, sort, q: fuzzy('name', search) })}
        columns={[
          { label: t('name'), sort: 'name', render: (p) => p.name },
          { label: t('status'), render: (p) => (p.enabled ? common('enabled') : common('disabled')) },
          { label: t('mode'), render: (p) => (p.src_registry?.id ? t('pull') : t('push')) },
          { label: t('srcReg'), render: (p) => regName(p.src_registry) },
          { label: t('destReg'), render: (p) => regName(p.dest_registry) },
          { label: t('trigger'), render: (p) => (['manual', 'scheduled', 'event_based'].includes(p.trigger?.type ?? '') ? t(p.trigger!.type as 'manual') : p.trigger?.type ?? '—') },
          { label: common('created'), sort: 'creation_time', render: (p) => date(p.creation_time) },
          {
            label: common('actions'),
            render: (p) => (
              <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                <button type="button" aria-label={t('replicateOf', { name: p.name })} onClick={() => replicate(p)}>
                  {t('replicate')}
                </button>
                <button type="button" class="outline" aria-label={t('showExecutionsOf', { name: p.name })} aria-pressed={selected?.id === p.id} onClick={() => setSelected(p)}>
                  {t('showExecutions')}
                </button>
                <button type="button" class="outline" aria-label={t('editOf', { name: p.name })} onClick={() => setDialog({ editing: p })}>
                  {common('edit')}
                </button>
                <button type="button" class="outline danger" aria-label={t('deleteOf', { name: p.name })} onClick={() => setDeleting(p)}>
                  {common('delete')}
                </button>
              </div>
            ),
          },
        ]}
      />

      <h2>{selected ? t('executionsOf', { name: selected.name }) : t('allExecutions')}</h2>
      <DataTable<Execution>
        key={selected?.id ?? 0}
        caption={selected ? t('executionsOf', { name: selected.name }) : t('allExecutions')}
        reloadKey={reloadExec}
        rowKey={(x) => x.id}
        toolbar={
          selected && (
            <button type="button" class="outline" onClick={() => setSelected(null)}>
              {t('showAll')}
            </button>
          )
        }
        load={async ({ page: p, pageSize }) => {
          const d = await page<Execution>('/replication/executions', { page: p, page_size: pageSize, policy_id: selected?.id });
          setActive(d.items.some((x) => ACTIVE.test(x.status)));
          return d;
        }}
        columns={[
          { label: t('id'), class: 'num', render: (x) => x.id },
          { label: t('status'), render: (x) => (
            <>
              <Status value={x.status} />
              {x.status_text && <small class="muted"> {x.status_text}</small>}
            </>
          ) },
          { label: t('trigger'), render: (x) => x.trigger ?? '—' },
          {
            label: t('progress'),
            render: (x) => {
              const total = x.total ?? 0;
              const done = x.succeed ?? 0;
              return (
                <div>
                  <progress value={done} max={Math.max(total, 1)} aria-label={t('progressOf', { id: x.id })} />
                  <small>
                    {t('succeeded', { done, total })}
                    {(x.failed ?? 0) > 0 && <span class="status-bad"> · {t('failed', { n: x.failed ?? 0 })}</span>}
                  </small>
                </div>
              );
            },
          },
          { label: t('startTime'), render: (x) => date(x.start_time) },
          { label: t('endTime'), render: (x) => date(x.end_time) },
          {
            label: common('actions'),
            render: (x) => (
              <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                <button type="button" class="outline" aria-label={t('tasksOf', { id: x.id })} onClick={() => setTasksOf(x)}>
                  {t('tasks')}
                </button>
                {ACTIVE.test(x.status) && (
                  <button type="button" class="outline secondary" aria-label={t('stopOf', { id: x.id })} onClick={() => stop(x)}>
                    {t('stop')}
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />

      <RuleDialog
        open={!!dialog}
        editing={dialog?.editing ?? null}
        onClose={() => setDialog(null)}
        onSaved={() => {
          setDialog(null);
          setReloadRules((n) => n + 1);
        }}
      />
      <Confirm
        open={!!deleting}
        title={t('deleteTitle')}
        message={common('deleteConfirm', { what: deleting?.name ?? '' })}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
      <TasksDialog execution={tasksOf} onClose={() => setTasksOf(null)} onLog={setLogOf} />
      <LogDialog
        title={logOf ? t('logOf', { id: logOf.id }) : undefined}
        path={logOf ? `/replication/executions/${logOf.execution_id}/tasks/${logOf.id}/log` : null}
        onClose={() => setLogOf(null)}
      />
    </section>
  );
}

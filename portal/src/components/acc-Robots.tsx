// Robot accounts, project-level (a project's tab) or system-level (the
// administration page): list, create, enable/disable, refresh the secret,
// delete. A secret is shown once, right after it is made.
import { useEffect, useState } from 'preact/hooks';
import { del, get, page, patch, post, put } from '../lib/api';
import { date } from '../lib/format';
import { common, explain, messages } from '../lib/i18n';
import { registryHost, useSession } from '../lib/session';
import type { Project } from '../lib/types';
import { Alert } from './Alert';
import { CopyField } from './CopyButton';
import { DataTable, fuzzy } from './DataTable';
import { Confirm, Dialog, FormFooter } from './Dialog';
import { FieldHelp } from './acc-Help';

const t = messages({
  en: {
    caption: 'Robot accounts',
    captionOf: 'Robot accounts of {project}',
    search: 'Search robot accounts',
    newRobot: 'New robot account',
    name: 'Name',
    nameHelp: 'Lowercase letters, digits and . _ - between them. The full name becomes {example}.',
    expiration: 'Expiration (days)',
    expirationHelp: 'Days the account stays valid; −1 for never.',
    expirationInvalid: 'Expiration is a whole number of days (1 or more), or −1 for never.',
    description: 'Description',
    permissions: 'Permissions',
    permissionsNeeded: 'Choose at least one permission.',
    scope: 'Projects covered',
    allProjects: 'All projects',
    permissionCol: 'Permissions',
    enabledCol: 'Enabled',
    expires: 'Expires',
    expired: 'Expired',
    enable: 'Enable',
    disable: 'Disable',
    refresh: 'Refresh secret',
    refreshTitle: 'Refresh the secret',
    refreshText: 'Make a new secret for {name}? The current secret stops working at once.',
    deleteTitle: 'Delete robot account',
    created: 'Robot account created',
    refreshed: 'New secret',
    once: 'Copy the secret now: it will not be shown again. If it is lost, refresh the secret to get a new one.',
    fullName: 'Robot name',
    secret: 'Secret',
    nameWhat: 'name',
    secretWhat: 'secret',
    nowEnabled: '{name} is enabled.',
    nowDisabled: '{name} is disabled.',
    deleted: '{name} was deleted.',
    more: '+{n} more',
    loginHint: 'Sign in with: docker login {host} -u \'{name}\'',
    'repository:pull': 'Pull repository',
    'repository:push': 'Push repository',
    'repository:delete': 'Delete repository',
    'repository:list': 'List repository',
    'artifact:read': 'Read artifact',
    'artifact:list': 'List artifact',
    'artifact:delete': 'Delete artifact',
    'tag:create': 'Create tag',
    'tag:delete': 'Delete tag',
    'tag:list': 'List tag',
    'artifact-label:create': 'Add label to artifact',
    'artifact-label:delete': 'Remove label from artifact',
    'scan:create': 'Scan artifact',
    'accessory:list': 'List accessory',
  },
  zh: {
    caption: '机器人账户',
    captionOf: '{project} 的机器人账户',
    search: '搜索机器人账户',
    newRobot: '新建机器人账户',
    name: '名称',
    nameHelp: '小写字母、数字，以及位于其间的 . _ -。完整名称为 {example}。',
    expiration: '有效期（天）',
    expirationHelp: '账户有效的天数；−1 表示永不过期。',
    expirationInvalid: '有效期须为整数天（至少 1），或 −1 表示永不过期。',
    description: '描述',
    permissions: '权限',
    permissionsNeeded: '请至少选择一项权限。',
    scope: '适用项目',
    allProjects: '所有项目',
    permissionCol: '权限',
    enabledCol: '已启用',
    expires: '过期时间',
    expired: '已过期',
    enable: '启用',
    disable: '停用',
    refresh: '刷新密钥',
    refreshTitle: '刷新密钥',
    refreshText: '为 {name} 生成新的密钥？当前密钥将立即失效。',
    deleteTitle: '删除机器人账户',
    created: '机器人账户已创建',
    refreshed: '新的密钥',
    once: '请立即复制密钥：它不会再次显示。如果丢失，可刷新密钥以获得新的密钥。',
    fullName: '机器人名称',
    secret: '密钥',
    nameWhat: '名称',
    secretWhat: '密钥',
    nowEnabled: '已启用 {name}。',
    nowDisabled: '已停用 {name}。',
    deleted: '已删除 {name}。',
    more: '另有 {n} 项',
    loginHint: '登录方式：docker login {host} -u \'{name}\'',
    'repository:pull': '拉取镜像仓库',
    'repository:push': '推送镜像仓库',
    'repository:delete': '删除镜像仓库',
    'repository:list': '列出镜像仓库',
    'artifact:read': '读取制品',
    'artifact:list': '列出制品',
    'artifact:delete': '删除制品',
    'tag:create': '创建 Tag',
    'tag:delete': '删除 Tag',
    'tag:list': '列出 Tag',
    'artifact-label:create': '为制品添加标签',
    'artifact-label:delete': '移除制品的标签',
    'scan:create': '扫描制品',
    'accessory:list': '列出附件',
  },
});

export interface Access {
  resource: string;
  action: string;
  effect?: string;
}
export interface RobotPermission {
  kind: string;
  namespace: string;
  access: Access[];
}
export interface Robot {
  id: number;
  name: string;
  description?: string;
  level: string;
  duration: number;
  disable: boolean;
  expires_at: number;
  permissions: RobotPermission[];
  creation_time?: string;
}

/** The accesses offered as checkboxes (resource:action, Harbor's names). */
const CHOICES = [
  'repository:pull',
  'repository:push',
  'repository:delete',
  'repository:list',
  'artifact:read',
  'artifact:list',
  'artifact:delete',
  'tag:create',
  'tag:delete',
  'tag:list',
  'artifact-label:create',
  'artifact-label:delete',
  'scan:create',
  'accessory:list',
] as const;
type Choice = (typeof CHOICES)[number];
const DEFAULT_CHOICES: Choice[] = ['repository:pull', 'repository:push', 'artifact:read', 'tag:list'];

function accessLabel(a: Access): string {
  const key = `${a.resource}:${a.action}`;
  return (CHOICES as readonly string[]).includes(key) ? t(key as Choice) : key;
}

/** A short account of what a robot may do, in which projects. */
function PermissionSummary({ robot, project }: { robot: Robot; project?: Project }) {
  const parts = robot.permissions.flatMap((p) => {
    const where = project ? '' : p.namespace === '*' ? `${t('allProjects')}: ` : `${p.namespace}: `;
    return p.access.map((a) => where + accessLabel(a));
  });
  const shown = parts.slice(0, 3).join(', ');
  return (
    <span title={parts.join('\n')}>
      {shown}
      {parts.length > 3 && <span class="muted"> {t('more', { n: parts.length - 3 })}</span>}
    </span>
  );
}

function expires(r: Robot) {
  if (r.expires_at === -1 || r.duration === -1) return common('never');
  const d = new Date(r.expires_at * 1000);
  if (d.getTime() < Date.now()) return <span class="status-bad">{t('expired')}</span>;
  return d.toLocaleString(document.documentElement.lang || undefined);
}

/** The name and secret of a new (or refreshed) robot, shown this once. */
export function SecretDialog({ shown, onClose }: { shown: { name: string; secret: string; refreshed?: boolean } | null; onClose: () => void }) {
  const { info } = useSession();
  return (
    <Dialog
      open={!!shown}
      onClose={onClose}
      title={shown?.refreshed ? t('refreshed') : t('created')}
      footer={
        <button type="button" onClick={onClose}>
          {common('close')}
        </button>
      }
    >
      {shown && (
        <>
          <p class="notice notice-info">
            <strong>{t('once')}</strong>
          </p>
          <dl class="facts">
            <dt>{t('fullName')}</dt>
            <dd>
              <CopyField value={shown.name} what={t('nameWhat')} />
            </dd>
            <dt>{t('secret')}</dt>
            <dd>
              <CopyField value={shown.secret} what={t('secretWhat')} />
            </dd>
          </dl>
          <p>
            <small class="muted">{t('loginHint', { host: registryHost(info), name: shown.name })}</small>
          </p>
        </>
      )}
    </Dialog>
  );
}

function NewRobot({
  project,
  open,
  onClose,
  onCreated,
}: {
  project?: Project;
  open: boolean;
  onClose: () => void;
  onCreated: (r: { name: string; secret: string }) => void;
}) {
  const [name, setName] = useState('');
  const [days, setDays] = useState('30');
  const [description, setDescription] = useState('');
  const [chosen, setChosen] = useState<Set<string>>(new Set(DEFAULT_CHOICES));
  const [namespace, setNamespace] = useState('*');
  const [projects, setProjects] = useState<Project[]>([]);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!open) return;
    setName('');
    setDays('30');
    setDescription('');
    setChosen(new Set(DEFAULT_CHOICES));
    setNamespace('*');
    setError('');
    if (!project) get<Project[]>('/projects', { page_size: 100, sort: 'name' }).then((ps) => setProjects(ps ?? []), () => setProjects([]));
  }, [open]);
  const toggle = (c: string, on: boolean) => {
    const next = new Set(chosen);
    if (on) next.add(c);
    else next.delete(c);
    setChosen(next);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    const duration = Number(days);
    if (!Number.isInteger(duration) || (duration !== -1 && duration < 1)) {
      setError(t('expirationInvalid'));
      return;
    }
    if (chosen.size === 0) {
      setError(t('permissionsNeeded'));
      return;
    }
    const access = CHOICES.filter((c) => chosen.has(c)).map((c) => {
      const [resource, action] = c.split(':');
      return { resource, action };
    });
    setBusy(true);
    setError('');
    try {
      const made = await post<{ id: number; name: string; secret: string }>('/robots', {
        name: name.trim(),
        description,
        level: project ? 'project' : 'system',
        duration,
        disable: false,
        permissions: [{ kind: 'project', namespace: project ? project.name : namespace, access }],
      });
      if (made) onCreated({ name: made.name, secret: made.secret });
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  const example = project ? `robot$${project.name}+${name || '…'}` : `robot$${name || '…'}`;
  return (
    <Dialog open={open} onClose={onClose} title={t('newRobot')} wide>
      <form onSubmit={submit}>
        <div class="grid">
          <div>
            <label>
              {t('name')}
              <input
                required
                maxLength={255}
                pattern="[a-z0-9]+(?:[._\-]+[a-z0-9]+)*"
                autoComplete="off"
                value={name}
                aria-describedby="robot-name-help"
                onInput={(e) => setName((e.target as HTMLInputElement).value)}
              />
            </label>
            <FieldHelp id="robot-name-help">{t('nameHelp', { example })}</FieldHelp>
          </div>
          <div>
            <label>
              {t('expiration')}
              <input
                type="number"
                required
                min={-1}
                step={1}
                value={days}
                aria-describedby="robot-exp-help"
                onInput={(e) => setDays((e.target as HTMLInputElement).value)}
              />
            </label>
            <FieldHelp id="robot-exp-help">{t('expirationHelp')}</FieldHelp>
          </div>
        </div>
        <label>
          {t('description')}
          <textarea rows={2} value={description} onInput={(e) => setDescription((e.target as HTMLTextAreaElement).value)} />
        </label>
        {!project && (
          <label>
            {t('scope')}
            <select value={namespace} onChange={(e) => setNamespace((e.target as HTMLSelectElement).value)}>
              <option value="*">{t('allProjects')}</option>
              {projects.map((p) => (
                <option value={p.name}>{p.name}</option>
              ))}
            </select>
          </label>
        )}
        <fieldset>
          <legend>{t('permissions')}</legend>
          <div class="grid" style={{ gridTemplateColumns: 'repeat(auto-fill, minmax(13rem, 1fr))', gap: '0.25rem 1rem' }}>
            {CHOICES.map((c) => (
              <label>
                <input type="checkbox" checked={chosen.has(c)} onChange={(e) => toggle(c, (e.target as HTMLInputElement).checked)} />
                {t(c)}
              </label>
            ))}
          </div>
        </fieldset>
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} />
      </form>
    </Dialog>
  );
}

/**
 * The robot accounts of `project` (project level), or the system-level ones
 * when no project is given. `manage` shows the controls.
 */
export function RobotAccounts({ project, manage }: { project?: Project; manage: boolean }) {
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<{ name: string; secret: string; refreshed?: boolean } | null>(null);
  const [refreshing, setRefreshing] = useState<Robot | null>(null);
  const [deleting, setDeleting] = useState<Robot | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [reload, setReload] = useState(0);
  const again = () => setReload((n) => n + 1);

  const base = project ? `Level=project,ProjectID=${project.project_id}` : 'Level=system';
  const load = ({ page: p, pageSize, search }: { page: number; pageSize: number; search: string }) => {
    const f = fuzzy('name', search);
    return page<Robot>('/robots', { page: p, page_size: pageSize, q: f ? `${base},${f}` : base });
  };

  const setEnabled = async (r: Robot, enabled: boolean) => {
    setError('');
    setNotice('');
    try {
      await put(`/robots/${r.id}`, {
        id: r.id,
        name: r.name,
        description: r.description ?? '',
        level: r.level,
        duration: r.duration,
        permissions: r.permissions,
        disable: !enabled,
      });
      setNotice(t(enabled ? 'nowEnabled' : 'nowDisabled', { name: r.name }));
      again();
    } catch (err) {
      setError(explain(err));
    }
  };
  const refresh = async () => {
    if (!refreshing) return;
    setBusy(true);
    setError('');
    setNotice('');
    try {
      const r = await patch<{ secret: string }>(`/robots/${refreshing.id}`, {});
      if (r?.secret) setShown({ name: refreshing.name, secret: r.secret, refreshed: true });
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
      setRefreshing(null);
    }
  };
  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    setError('');
    setNotice('');
    try {
      await del(`/robots/${deleting.id}`);
      setNotice(t('deleted', { name: deleting.name }));
      again();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };

  return (
    <>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      <DataTable<Robot>
        caption={project ? t('captionOf', { project: project.name }) : t('caption')}
        searchLabel={t('search')}
        reloadKey={reload}
        rowKey={(r) => r.id}
        toolbar={
          manage && (
            <button type="button" onClick={() => setCreating(true)}>
              + {t('newRobot')}
            </button>
          )
        }
        load={load}
        columns={[
          {
            label: t('name'),
            render: (r) => (
              <>
                <span id={`robot-${r.id}`}>{r.name}</span>
                {r.description && (
                  <>
                    <br />
                    <small class="muted">{r.description}</small>
                  </>
                )}
              </>
            ),
          },
          { label: t('permissionCol'), render: (r) => <PermissionSummary robot={r} project={project} /> },
          {
            label: t('enabledCol'),
            render: (r) => (r.disable ? <span class="status-bad">{common('no')}</span> : <span class="status-ok">{common('yes')}</span>),
          },
          { label: t('expires'), render: expires },
          { label: common('created'), render: (r) => date(r.creation_time) },
          ...(manage
            ? [
                {
                  label: common('actions'),
                  render: (r: Robot) => (
                    <div class="acc-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                      <button type="button" class="outline" aria-describedby={`robot-${r.id}`} onClick={() => setEnabled(r, r.disable)}>
                        {r.disable ? t('enable') : t('disable')}
                      </button>
                      <button type="button" class="outline" aria-describedby={`robot-${r.id}`} onClick={() => setRefreshing(r)}>
                        {t('refresh')}
                      </button>
                      <button type="button" class="outline danger" aria-describedby={`robot-${r.id}`} onClick={() => setDeleting(r)}>
                        {common('delete')}
                      </button>
                    </div>
                  ),
                },
              ]
            : []),
        ]}
      />
      {manage && (
        <>
          <NewRobot
            project={project}
            open={creating}
            onClose={() => setCreating(false)}
            onCreated={(r) => {
              setCreating(false);
              setShown(r);
              again();
            }}
          />
          <Confirm
            open={!!refreshing}
            title={t('refreshTitle')}
            message={t('refreshText', { name: refreshing?.name ?? '' })}
            confirmLabel={t('refresh')}
            busy={busy}
            onConfirm={refresh}
            onClose={() => setRefreshing(null)}
          />
          <Confirm
            open={!!deleting}
            title={t('deleteTitle')}
            message={common('deleteConfirm', { what: deleting?.name ?? '' })}
            busy={busy}
            onConfirm={remove}
            onClose={() => setDeleting(null)}
          />
        </>
      )}
      <SecretDialog shown={shown} onClose={() => setShown(null)} />
    </>
  );
}

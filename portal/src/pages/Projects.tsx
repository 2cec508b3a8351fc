import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../components/Alert';
import { QuotaBar } from '../components/Charts';
import { DataTable, fuzzy } from '../components/DataTable';
import { Dialog, FormFooter } from '../components/Dialog';
import { create, get, page } from '../lib/api';
import { date } from '../lib/format';
import { explain, messages, common } from '../lib/i18n';
import { navigate } from '../lib/router';
import { useSession } from '../lib/session';
import type { Project, QuotaSummary } from '../lib/types';

export const roleNames = messages({
  en: { r0: '—', r1: 'Project Admin', r2: 'Developer', r3: 'Guest', r4: 'Maintainer', r5: 'Limited Guest' },
  zh: { r0: '—', r1: '项目管理员', r2: '开发者', r3: '访客', r4: '维护人员', r5: '受限访客' },
});

const t = messages({
  en: {
    title: 'Projects',
    newProject: 'New project',
    search: 'Search projects by name',
    access: 'Access level',
    public: 'Public',
    private: 'Private',
    role: 'Role',
    type: 'Type',
    proxy: 'Proxy cache',
    project: 'Project',
    repos: 'Repositories',
    storage: 'Storage used',
    storageOf: 'Storage used by {name}',
    projectName: 'Project name',
    nameHelp: 'Lowercase letters, digits and . _ - ; 1 to 255 characters.',
    publicHelp: 'Anyone can pull from a public project without signing in.',
    limit: 'Storage limit',
    limitHelp: 'Leave empty, or −1, for no limit.',
    unit: 'Unit',
    proxyOf: 'Proxy cache of registry',
    none: 'None (a normal project)',
    owner: 'Owner',
  },
  zh: {
    title: '项目',
    newProject: '新建项目',
    search: '按名称搜索项目',
    access: '访问级别',
    public: '公开',
    private: '私有',
    role: '角色',
    type: '类型',
    proxy: '镜像代理',
    project: '项目',
    repos: '镜像仓库数',
    storage: '已用存储',
    storageOf: '{name} 的已用存储',
    projectName: '项目名称',
    nameHelp: '小写字母、数字及 . _ -，长度 1 到 255。',
    publicHelp: '任何人无需登录即可从公开项目拉取镜像。',
    limit: '存储容量',
    limitHelp: '留空或填 −1 表示不限制。',
    unit: '单位',
    proxyOf: '代理的目标仓库',
    none: '无（普通项目）',
    owner: '所有者',
  },
});

/** The project's storage against its quota, loaded per visible row. */
function ProjectQuota({ project }: { project: Project }) {
  const [q, setQ] = useState<QuotaSummary | null>(null);
  useEffect(() => {
    get<{ quota?: QuotaSummary }>(`/projects/${project.project_id}/summary`).then(
      (s) => setQ(s.quota ?? {}),
      () => setQ({}),
    );
  }, [project.project_id]);
  if (!q) return <span aria-busy="true" />;
  if (!q.used) return <span class="muted">—</span>;
  return <QuotaBar used={q.used.storage ?? 0} hard={q.hard?.storage ?? -1} label={t('storageOf', { name: project.name })} />;
}

const UNITS: [string, number][] = [
  ['MiB', 1024 ** 2],
  ['GiB', 1024 ** 3],
  ['TiB', 1024 ** 4],
];

function CreateProject({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (id: number | null) => void }) {
  const { user } = useSession();
  const [name, setName] = useState('');
  const [isPublic, setPublic] = useState(false);
  const [limit, setLimit] = useState('');
  const [unit, setUnit] = useState('GiB');
  const [registry, setRegistry] = useState('');
  const [registries, setRegistries] = useState<{ id: number; name: string; url: string }[]>([]);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (open && user?.sysadmin_flag) get<{ id: number; name: string; url: string }[]>('/registries', { page_size: 100 }).then(setRegistries, () => {});
  }, [open]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const n = Number(limit);
    const storage = limit.trim() === '' || n < 0 ? -1 : Math.round(n * (UNITS.find((u) => u[0] === unit)?.[1] ?? 1));
    try {
      const body: Record<string, unknown> = { project_name: name.trim(), metadata: { public: String(isPublic) }, storage_limit: storage };
      if (registry) body.registry_id = Number(registry);
      const { id } = await create('/projects', body);
      setName('');
      setLimit('');
      onCreated(id);
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onClose={onClose} title={t('newProject')}>
      <form onSubmit={submit}>
        <label>
          {t('projectName')}
          <input required value={name} aria-describedby="pn-help" pattern="[a-z0-9]+(?:[._\-][a-z0-9]+)*" maxLength={255} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <small id="pn-help">{t('nameHelp')}</small>
        <label>
          <input type="checkbox" role="switch" checked={isPublic} aria-describedby="pub-help" onChange={(e) => setPublic((e.target as HTMLInputElement).checked)} />
          {t('public')}
        </label>
        <small id="pub-help">{t('publicHelp')}</small>
        <fieldset class="grid">
          <label>
            {t('limit')}
            <input type="number" min="-1" step="any" value={limit} aria-describedby="lim-help" onInput={(e) => setLimit((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            {t('unit')}
            <select value={unit} onChange={(e) => setUnit((e.target as HTMLSelectElement).value)}>
              {UNITS.map(([u]) => (
                <option value={u}>{u}</option>
              ))}
            </select>
          </label>
        </fieldset>
        <small id="lim-help">{t('limitHelp')}</small>
        {user?.sysadmin_flag && registries.length > 0 && (
          <label>
            {t('proxyOf')}
            <select value={registry} onChange={(e) => setRegistry((e.target as HTMLSelectElement).value)}>
              <option value="">{t('none')}</option>
              {registries.map((r) => (
                <option value={r.id}>
                  {r.name} ({r.url})
                </option>
              ))}
            </select>
          </label>
        )}
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} label={common('create')} />
      </form>
    </Dialog>
  );
}

export function Projects() {
  const { user, info } = useSession();
  // Harbor's `project_creation_restriction`: `adminonly` hides the button
  // from everyone but system admins (the server refuses them anyway).
  const mayCreate = !!user?.sysadmin_flag || (info as { project_creation_restriction?: string } | null)?.project_creation_restriction !== 'adminonly';
  const [creating, setCreating] = useState(false);
  const [reload, setReload] = useState(0);
  return (
    <section>
      <h1>{t('title')}</h1>
      <DataTable<Project>
        caption={t('title')}
        searchLabel={t('search')}
        reloadKey={reload}
        rowKey={(p) => p.project_id}
        toolbar={
          mayCreate && (
            <button type="button" onClick={() => setCreating(true)}>
              {t('newProject')}
            </button>
          )
        }
        load={({ page: p, pageSize, sort, search }) => page<Project>('/projects', { page: p, page_size: pageSize, sort, q: fuzzy('name', search), with_detail: true })}
        columns={[
          { label: t('project'), sort: 'name', render: (p) => <a href={`/harbor/projects/${p.project_id}/repositories`}>{p.name}</a> },
          { label: t('access'), render: (p) => (p.metadata?.public === 'true' ? t('public') : t('private')) },
          { label: t('role'), render: (p) => roleNames(`r${p.current_user_role_id ?? 0}` as 'r0') },
          { label: t('type'), render: (p) => (p.registry_id ? t('proxy') : t('project')) },
          { label: t('repos'), class: 'num', render: (p) => p.repo_count ?? 0 },
          { label: t('storage'), render: (p) => <ProjectQuota project={p} /> },
          { label: common('created'), sort: 'creation_time', render: (p) => date(p.creation_time) },
        ]}
      />
      <CreateProject
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(id) => {
          setCreating(false);
          setReload(reload + 1);
          if (id) navigate(`/harbor/projects/${id}/repositories`);
        }}
      />
    </section>
  );
}

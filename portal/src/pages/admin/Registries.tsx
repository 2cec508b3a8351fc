// Registries: the remote registry endpoints replication and proxy-cache
// projects use. System admins only. A stored secret reads `*****`; sending
// it back unchanged keeps it.
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { DataTable, fuzzy } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { Status, checked, val } from '../../components/pol-Common';
import { del, get, page, post, put } from '../../lib/api';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';

const t = messages({
  en: {
    title: 'Registries',
    newEndpoint: 'New endpoint',
    editEndpoint: 'Edit endpoint',
    search: 'Search registries by name',
    provider: 'Provider',
    name: 'Name',
    url: 'Endpoint URL',
    urlHelp: 'e.g. https://registry.example.com',
    accessId: 'Access ID',
    accessSecret: 'Access secret',
    secretHelp: 'Leave as it is to keep the stored secret.',
    verifyCert: 'Verify Remote Cert',
    description: 'Description',
    test: 'Test connection',
    testOk: 'Connection succeeded: the registry answered and accepted the credential.',
    status: 'Status',
    type: 'Provider',
    deleteTitle: 'Delete endpoint',
    editOf: 'Edit {name}',
    deleteOf: 'Delete {name}',
    berth: 'Berth',
    harbor: 'Harbor',
    'docker-registry': 'Docker Registry',
  },
  zh: {
    title: '仓库管理',
    newEndpoint: '新建目标',
    editEndpoint: '编辑目标',
    search: '按名称搜索仓库',
    provider: '提供者',
    name: '目标名',
    url: '目标 URL',
    urlHelp: '例如 https://registry.example.com',
    accessId: '访问 ID',
    accessSecret: '访问密码',
    secretHelp: '保持不变即沿用已保存的密码。',
    verifyCert: '验证远程证书',
    description: '描述',
    test: '测试连接',
    testOk: '连接成功：仓库已响应并接受了凭证。',
    status: '状态',
    type: '提供者',
    deleteTitle: '删除目标',
    editOf: '编辑 {name}',
    deleteOf: '删除 {name}',
    berth: 'Berth',
    harbor: 'Harbor',
    'docker-registry': 'Docker Registry',
  },
});

export interface Registry {
  id: number;
  name: string;
  description?: string;
  type: string;
  url: string;
  insecure?: boolean;
  status?: string;
  creation_time?: string;
  credential?: { type?: string; access_key?: string; access_secret?: string };
}

function providerName(p: string): string {
  return ['berth', 'harbor', 'docker-registry'].includes(p) ? t(p as 'berth') : p;
}

function EndpointDialog({ open, editing, onClose, onSaved }: { open: boolean; editing: Registry | null; onClose: () => void; onSaved: () => void }) {
  const [adapters, setAdapters] = useState<string[]>([]);
  const [kind, setKind] = useState('');
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [key, setKey] = useState('');
  const [secret, setSecret] = useState('');
  const [verify, setVerify] = useState(true);
  const [error, setError] = useState('');
  const [tested, setTested] = useState('');
  const [busy, setBusy] = useState('');

  useEffect(() => {
    if (!open) return;
    setError('');
    setTested('');
    setKind(editing?.type ?? '');
    setName(editing?.name ?? '');
    setUrl(editing?.url ?? '');
    setDescription(editing?.description ?? '');
    setKey(editing?.credential?.access_key ?? '');
    setSecret(editing?.credential?.access_secret ?? '');
    setVerify(!(editing?.insecure ?? false));
    get<string[]>('/replication/adapters').then(
      (a) => {
        setAdapters(a);
        if (!editing) setKind((k) => k || a[0] || '');
      },
      (e) => setError(explain(e)),
    );
  }, [open, editing?.id]);

  const flat = () => ({
    type: kind,
    name: name.trim(),
    description,
    url: url.trim(),
    credential_type: 'basic',
    access_key: key,
    access_secret: secret,
    insecure: !verify,
  });

  const test = async () => {
    setBusy('test');
    setError('');
    setTested('');
    try {
      await post('/registries/ping', editing ? { id: editing.id, ...flat() } : flat());
      setTested(t('testOk'));
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy('');
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy('save');
    setError('');
    setTested('');
    try {
      if (editing) {
        await put(`/registries/${editing.id}`, flat());
      } else {
        await post('/registries', {
          name: name.trim(),
          type: kind,
          url: url.trim(),
          description,
          insecure: !verify,
          credential: { type: 'basic', access_key: key, access_secret: secret },
        });
      }
      onSaved();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy('');
    }
  };

  return (
    <Dialog open={open} onClose={onClose} title={editing ? t('editEndpoint') : t('newEndpoint')}>
      <form onSubmit={submit}>
        <label>
          {t('provider')}
          <select required value={kind} disabled={!!editing} onChange={(e) => setKind(val(e))}>
            {adapters.length === 0 && kind && <option value={kind}>{providerName(kind)}</option>}
            {adapters.map((a) => (
              <option value={a}>{providerName(a)}</option>
            ))}
          </select>
        </label>
        <label>
          {t('name')}
          <input required maxLength={255} value={name} onInput={(e) => setName(val(e))} />
        </label>
        <label>
          {t('description')}
          <input value={description} onInput={(e) => setDescription(val(e))} />
        </label>
        <label>
          {t('url')}
          <input required type="url" value={url} placeholder="https://" aria-describedby="reg-url-help" onInput={(e) => setUrl(val(e))} />
        </label>
        <small class="field-help" id="reg-url-help">{t('urlHelp')}</small>
        <label>
          {t('accessId')}
          <input value={key} autoComplete="off" onInput={(e) => setKey(val(e))} />
        </label>
        <label>
          {t('accessSecret')}
          <input
            type="password"
            value={secret}
            autoComplete="new-password"
            aria-describedby={editing ? 'reg-secret-help' : undefined}
            onInput={(e) => setSecret(val(e))}
          />
        </label>
        {editing && (
          <small class="field-help" id="reg-secret-help">
            {t('secretHelp')}
          </small>
        )}
        <label>
          <input type="checkbox" checked={verify} onChange={(e) => setVerify(checked(e))} />
          {t('verifyCert')}
        </label>
        <Alert>{error}</Alert>
        <Alert kind="success">{tested}</Alert>
        <FormFooter onCancel={onClose} busy={busy === 'save'} disabled={!!busy} label={editing ? common('save') : common('create')}>
          <button type="button" class="outline" aria-busy={busy === 'test'} disabled={!!busy || !url.trim()} onClick={test}>
            {t('test')}
          </button>
        </FormFooter>
      </form>
    </Dialog>
  );
}

export function Registries(_props: Record<string, unknown>) {
  const [dialog, setDialog] = useState<{ editing: Registry | null } | null>(null);
  const [deleting, setDeleting] = useState<Registry | null>(null);
  const [reload, setReload] = useState(0);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    setError('');
    try {
      await del(`/registries/${deleting.id}`);
      setReload(reload + 1);
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };

  return (
    <section>
      <h1>{t('title')}</h1>
      <Alert>{error}</Alert>
      <DataTable<Registry>
        caption={t('title')}
        searchLabel={t('search')}
        reloadKey={reload}
        rowKey={(r) => r.id}
        toolbar={
          <button type="button" onClick={() => setDialog({ editing: null })}>
            + {t('newEndpoint')}
          </button>
        }
        load={({ page: p, pageSize, sort, search }) => page<Registry>('/registries', { page: p, page_size: pageSize, sort, q: fuzzy('name', search) })}
        columns={[
          { label: t('name'), sort: 'name', render: (r) => r.name },
          { label: t('url'), render: (r) => r.url },
          { label: t('type'), render: (r) => providerName(r.type) },
          { label: t('status'), render: (r) => <Status value={r.status} /> },
          { label: t('verifyCert'), render: (r) => (r.insecure ? common('no') : common('yes')) },
          { label: common('created'), sort: 'creation_time', render: (r) => date(r.creation_time) },
          {
            label: common('actions'),
            render: (r) => (
              <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                <button type="button" class="outline" aria-label={t('editOf', { name: r.name })} onClick={() => setDialog({ editing: r })}>
                  {common('edit')}
                </button>
                <button type="button" class="outline danger" aria-label={t('deleteOf', { name: r.name })} onClick={() => setDeleting(r)}>
                  {common('delete')}
                </button>
              </div>
            ),
          },
        ]}
      />
      <EndpointDialog
        open={!!dialog}
        editing={dialog?.editing ?? null}
        onClose={() => setDialog(null)}
        onSaved={() => {
          setDialog(null);
          setReload(reload + 1);
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
    </section>
  );
}

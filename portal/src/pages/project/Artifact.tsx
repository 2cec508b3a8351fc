import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { LabelChip } from '../../components/art-LabelList';
import '../../components/art-styles.css';
import { CopyButton, CopyField } from '../../components/CopyButton';
import { type Column, DataTable, fuzzy } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { ApiFailure, del, get, page, post } from '../../lib/api';
import {
  type Accessory,
  type Artifact as ArtifactT,
  artifactRoute,
  imagePlatform,
  type Label,
  may,
  platformString,
  type Reference,
  repoPath,
  repoRoute,
  type Tag,
} from '../../lib/art-types';
import { bytes, date, shortDigest } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import { registryHost, useSession } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: {
    back: 'Back to {repo}',
    overview: 'Overview',
    digest: 'Digest',
    type: 'Type',
    mediaType: 'Media type',
    artifactType: 'Artifact type',
    size: 'Size',
    pushTime: 'Push time',
    pullTime: 'Last pulled',
    author: 'Author',
    createdAt: 'Created',
    platforms: 'Platforms',
    platformsCaption: 'Platforms of this index',
    platform: 'Platform',
    pullCommand: 'Pull command',
    pullCommandWhat: 'pull command',
    tags: 'Tags',
    tag: 'Tag',
    searchTags: 'Search tags by name',
    noTags: 'This artifact has no tags.',
    addTag: 'Add tag',
    tagName: 'Tag name',
    tagHelp: 'Letters, digits, _ . and -, up to 128 characters; must not start with . or -.',
    tagPull: '{tag} pull command',
    immutable: 'Immutable',
    deleteTag: 'Delete tag',
    labels: 'Labels',
    noLabels: 'No labels.',
    removeLabel: 'Remove label {name}',
    labelToAdd: 'Label to add',
    chooseLabel: 'Choose a label…',
    addLabel: 'Add label',
    globalGroup: 'Global labels',
    projectGroup: 'Project labels',
    accessories: 'Accessories',
    accessoriesCaption: 'Signatures, SBOMs and other accessories',
    created: 'Created',
    buildHistory: 'Build history',
    noBuildHistory: 'No build history',
    command: 'Command',
    emptyLayer: 'no layer',
    annotations: 'Annotations',
    key: 'Key',
    value: 'Value',
    cosign: 'Cosign signature',
    notation: 'Notation signature',
    sbom: 'SBOM',
    other: 'Accessory',
  },
  zh: {
    back: '返回 {repo}',
    overview: '概览',
    digest: '摘要',
    type: '类型',
    mediaType: '媒体类型',
    artifactType: '制品类型',
    size: '大小',
    pushTime: '推送时间',
    pullTime: '最近拉取',
    author: '作者',
    createdAt: '创建时间',
    platforms: '平台',
    platformsCaption: '此索引包含的平台',
    platform: '平台',
    pullCommand: '拉取命令',
    pullCommandWhat: '拉取命令',
    tags: 'Tags',
    tag: 'Tag',
    searchTags: '按名称搜索 tag',
    noTags: '此制品没有 tag。',
    addTag: '添加 tag',
    tagName: 'Tag 名称',
    tagHelp: '字母、数字、_ . 和 -，最多 128 个字符；不能以 . 或 - 开头。',
    tagPull: '{tag} 的拉取命令',
    immutable: '不可变',
    deleteTag: '删除 tag',
    labels: '标签',
    noLabels: '没有标签。',
    removeLabel: '移除标签 {name}',
    labelToAdd: '要添加的标签',
    chooseLabel: '选择标签…',
    addLabel: '添加标签',
    globalGroup: '全局标签',
    projectGroup: '项目标签',
    accessories: '附件',
    accessoriesCaption: '签名、SBOM 及其他附件',
    created: '创建时间',
    buildHistory: '构建历史',
    noBuildHistory: '没有构建历史',
    command: '命令',
    emptyLayer: '无镜像层',
    annotations: '注解',
    key: '键',
    value: '值',
    cosign: 'Cosign 签名',
    notation: 'Notation 签名',
    sbom: 'SBOM',
    other: '附件',
  },
});

type Props = ProjectProps & { repo: string; digest: string };

function Section({ id, title, children }: { id: string; title: string; children: ComponentChildren }) {
  return (
    <section class="art-section">
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** An index's children, each with its platform and size (read per visible child). */
function Platforms({ refs, base, projectId, repo }: { refs: Reference[]; base: string; projectId: number; repo: string }) {
  type Row = Reference & { size?: number };
  const columns: Column<Row>[] = [
    { label: t('platform'), render: (r) => platformString(r.platform) || '—' },
    {
      label: t('digest'),
      render: (r) => (
        <a href={artifactRoute(projectId, repo, r.child_digest)} title={r.child_digest}>
          <code>{shortDigest(r.child_digest)}</code>
        </a>
      ),
    },
    { label: t('size'), class: 'num', render: (r) => bytes(r.size) },
  ];
  return (
    <DataTable<Row>
      caption={t('platformsCaption')}
      rowKey={(r) => r.child_digest}
      reloadKey={refs}
      columns={columns}
      load={async ({ page: p, pageSize }) => {
        const slice = refs.slice((p - 1) * pageSize, p * pageSize);
        const items = await Promise.all(
          slice.map(async (r) => {
            try {
              const child = await get<ArtifactT>(`${base}/artifacts/${r.child_digest}`, { with_tag: false });
              return { ...r, size: child.size };
            } catch {
              return { ...r, size: undefined };
            }
          }),
        );
        return { items, total: refs.length };
      }}
    />
  );
}

function Tags({
  art,
  pullBase,
  canAdd,
  canDelete,
  onChange,
}: {
  art: string;
  pullBase: string;
  canAdd: boolean;
  canDelete: boolean;
  onChange: () => void;
}) {
  const [reload, setReload] = useState(0);
  const [adding, setAdding] = useState(false);
  const [name, setName] = useState('');
  const [formError, setFormError] = useState('');
  const [deleting, setDeleting] = useState<Tag | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const changed = () => {
    setReload((n) => n + 1);
    onChange();
  };
  const add = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFormError('');
    try {
      await post(`${art}/tags`, { name: name.trim() });
      setAdding(false);
      setName('');
      changed();
    } catch (err) {
      setFormError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(`${art}/tags/${encodeURIComponent(deleting.name)}`);
      setError('');
      changed();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };
  const columns: Column<Tag>[] = [
    {
      label: t('tag'),
      render: (x) => (
        <>
          <code>{x.name}</code>
          {x.immutable && <span class="badge">{t('immutable')}</span>}
        </>
      ),
    },
    {
      label: t('pullCommand'),
      render: (x) => (
        <CopyButton text={`docker pull ${pullBase}:${x.name}`} what={t('tagPull', { tag: x.name })} />
      ),
    },
    { label: t('pushTime'), render: (x) => date(x.push_time) },
  ];
  if (canDelete)
    columns.push({
      label: common('actions'),
      render: (x) => (
        <button type="button" class="outline art-danger" title={`${t('deleteTag')} ${x.name}`} onClick={() => setDeleting(x)}>
          {common('delete')}
        </button>
      ),
    });
  return (
    <>
      <Alert>{error}</Alert>
      <DataTable<Tag>
        caption={t('tags')}
        searchLabel={t('searchTags')}
        rowKey={(x) => x.name}
        reloadKey={`${reload}-${art}`}
        toolbar={
          canAdd && (
            <button
              type="button"
              onClick={() => {
                setFormError('');
                setAdding(true);
              }}
            >
              <span aria-hidden="true">+ </span>
              {t('addTag')}
            </button>
          )
        }
        load={({ page: p, pageSize, search }) =>
          page<Tag>(`${art}/tags`, { page: p, page_size: pageSize, q: fuzzy('name', search), with_immutable_status: true })
        }
        columns={columns}
      />
      <Dialog open={adding} onClose={() => setAdding(false)} title={t('addTag')}>
        <form class="art-form" onSubmit={add}>
          <label>
            {t('tagName')}
            <input
              required
              maxLength={128}
              pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}"
              value={name}
              aria-describedby="tag-help"
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          </label>
          <small id="tag-help">{t('tagHelp')}</small>
          <Alert>{formError}</Alert>
          <FormFooter onCancel={() => setAdding(false)} busy={busy} />
        </form>
      </Dialog>
      <Confirm
        open={!!deleting}
        title={t('deleteTag')}
        message={common('deleteConfirm', { what: deleting?.name ?? '' })}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
    </>
  );
}

/** Labels on the artifact; add from the project's and the global labels. */
function Labels({ art, projectId, attached, canEdit, onChange }: { art: string; projectId: number; attached: Label[]; canEdit: boolean; onChange: () => void }) {
  const [available, setAvailable] = useState<{ g: Label[]; p: Label[] }>({ g: [], p: [] });
  const [choice, setChoice] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!canEdit) return;
    Promise.all([
      get<Label[]>('/labels', { scope: 'g', page_size: 100, sort: 'name' }).catch(() => [] as Label[]),
      get<Label[]>('/labels', { scope: 'p', project_id: projectId, page_size: 100, sort: 'name' }).catch(() => [] as Label[]),
    ]).then(([g, p]) => setAvailable({ g: g ?? [], p: p ?? [] }));
  }, [canEdit, projectId]);
  const have = new Set(attached.map((l) => l.id));
  const act = async (f: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await f();
      setError('');
      setChoice('');
      onChange();
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
    }
  };
  const free = (ls: Label[]) => ls.filter((l) => !have.has(l.id));
  return (
    <>
      <Alert>{error}</Alert>
      {attached.length === 0 ? (
        <p class="muted">{t('noLabels')}</p>
      ) : (
        <ul class="chips" style={{ padding: 0, listStyle: 'none' }}>
          {attached.map((l) => (
            <li style={{ listStyle: 'none' }}>
              <LabelChip label={l}>
                {canEdit && (
                  <button type="button" aria-label={t('removeLabel', { name: l.name })} title={t('removeLabel', { name: l.name })} disabled={busy} onClick={() => act(() => del(`${art}/labels/${l.id}`))}>
                    <span aria-hidden="true">×</span>
                  </button>
                )}
              </LabelChip>
            </li>
          ))}
        </ul>
      )}
      {canEdit && (free(available.g).length > 0 || free(available.p).length > 0) && (
        <form
          class="art-inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (choice) act(() => post(`${art}/labels`, { id: Number(choice) }));
          }}
        >
          <label>
            {t('labelToAdd')}
            <select value={choice} onChange={(e) => setChoice((e.target as HTMLSelectElement).value)}>
              <option value="">{t('chooseLabel')}</option>
              {free(available.p).length > 0 && (
                <optgroup label={t('projectGroup')}>
                  {free(available.p).map((l) => (
                    <option value={l.id}>{l.name}</option>
                  ))}
                </optgroup>
              )}
              {free(available.g).length > 0 && (
                <optgroup label={t('globalGroup')}>
                  {free(available.g).map((l) => (
                    <option value={l.id}>{l.name}</option>
                  ))}
                </optgroup>
              )}
            </select>
          </label>
          <button type="submit" disabled={!choice || busy} aria-busy={busy}>
            {t('addLabel')}
          </button>
        </form>
      )}
    </>
  );
}

function accessoryKind(type: string): string {
  if (type === 'signature.cosign') return t('cosign');
  if (type === 'signature.notation') return t('notation');
  if (type.includes('sbom')) return t('sbom');
  return t('other');
}

function Accessories({ art, projectId, repo }: { art: string; projectId: number; repo: string }) {
  const columns: Column<Accessory>[] = [
    {
      label: t('type'),
      render: (a) => (
        <>
          {accessoryKind(a.type)}
          <span class="small-muted">{a.type}</span>
        </>
      ),
    },
    {
      label: t('digest'),
      render: (a) => (
        <a href={artifactRoute(projectId, repo, a.digest)} title={a.digest}>
          <code>{shortDigest(a.digest)}</code>
        </a>
      ),
    },
    { label: t('size'), class: 'num', render: (a) => bytes(a.size) },
    { label: t('created'), render: (a) => date(a.creation_time) },
  ];
  return (
    <DataTable<Accessory>
      caption={t('accessoriesCaption')}
      rowKey={(a) => a.digest}
      reloadKey={art}
      columns={columns}
      load={({ page: p, pageSize }) => page<Accessory>(`${art}/accessories`, { page: p, page_size: pageSize })}
    />
  );
}

interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

function BuildHistory({ art, available }: { art: string; available: boolean }) {
  const [entries, setEntries] = useState<HistoryEntry[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    setEntries(null);
    setError('');
    if (!available) {
      setEntries([]);
      return;
    }
    get<HistoryEntry[]>(`${art}/additions/build_history`).then(
      (h) => setEntries(Array.isArray(h) ? h : []),
      (e) => {
        if (e instanceof ApiFailure && e.status === 404) setEntries([]);
        else setError(explain(e));
      },
    );
  }, [art, available]);
  if (error) return <Alert>{error}</Alert>;
  if (!entries) return <p aria-busy="true" />;
  if (entries.length === 0) return <p class="muted">{t('noBuildHistory')}</p>;
  const columns: Column<HistoryEntry & { n: number }>[] = [
    { label: t('created'), render: (h) => date(h.created) },
    {
      label: t('command'),
      render: (h) => (
        <>
          <code style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>{h.created_by || h.comment || '—'}</code>
          {h.empty_layer && <span class="small-muted">{t('emptyLayer')}</span>}
        </>
      ),
    },
  ];
  const rows = entries.map((h, n) => ({ ...h, n }));
  return (
    <DataTable<HistoryEntry & { n: number }>
      caption={t('buildHistory')}
      rowKey={(h) => h.n}
      reloadKey={entries}
      pageSizes={[25, 50, 100]}
      columns={columns}
      load={async ({ page: p, pageSize }) => ({ items: rows.slice((p - 1) * pageSize, p * pageSize), total: rows.length })}
    />
  );
}

export function Artifact({ project, role, repo, digest }: Props) {
  const { info } = useSession();
  const host = registryHost(info);
  const [a, setA] = useState<ArtifactT | null>(null);
  const [error, setError] = useState('');
  const [reload, setReload] = useState(0);
  const base = repoPath(project.name, repo);
  const art = `${base}/artifacts/${digest}`;
  useEffect(() => {
    get<ArtifactT>(art, { with_tag: true, with_label: true, with_accessory: true }).then(
      (x) => {
        setA(x);
        setError('');
      },
      (e) => setError(explain(e)),
    );
  }, [art, reload]);
  const bump = () => setReload((n) => n + 1);
  const pullBase = `${host}/${project.name}/${repo}`;
  const pullCmd = `docker pull ${pullBase}@${a?.digest ?? digest}`;
  const x = a?.extra_attrs ?? {};
  const refs = a?.references ?? [];
  const annotations = Object.entries(a?.annotations ?? {});
  const fact = (label: string, value: ComponentChildren) => (
    <>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </>
  );
  return (
    <section>
      <a class="art-back" href={repoRoute(project.project_id, repo)}>
        ← {t('back', { repo })}
      </a>
      <h1>
        {repo}@{shortDigest(digest)}
      </h1>
      <Alert>{error}</Alert>
      {!a && !error && <p aria-busy="true" />}
      {a && (
        <>
          <dl class="facts" aria-label={t('overview')}>
            {fact(t('digest'), <CopyField value={a.digest} what={t('digest').toLowerCase()} />)}
            {fact(t('type'), a.type)}
            {fact(t('mediaType'), <code>{a.media_type}</code>)}
            {a.artifact_type && a.artifact_type !== a.media_type && fact(t('artifactType'), <code>{a.artifact_type}</code>)}
            {fact(t('size'), bytes(a.size))}
            {fact(t('pushTime'), date(a.push_time))}
            {fact(t('pullTime'), date(a.pull_time))}
            {!refs.length && imagePlatform(a) && fact(t('platform'), imagePlatform(a))}
            {str(x.author) && fact(t('author'), str(x.author))}
            {str(x.created) && fact(t('createdAt'), date(str(x.created)))}
            {fact(
              t('pullCommand'),
              <div class="copy-field">
                <code>{pullCmd}</code>
                <CopyButton text={pullCmd} what={t('pullCommandWhat')} />
              </div>,
            )}
          </dl>
          {refs.length > 0 && (
            <Section id="art-platforms" title={t('platforms')}>
              <Platforms refs={refs} base={base} projectId={project.project_id} repo={repo} />
            </Section>
          )}
          <Section id="art-tags" title={t('tags')}>
            <Tags art={art} pullBase={pullBase} canAdd={may.addTag(role)} canDelete={may.deleteTag(role)} onChange={bump} />
          </Section>
          <Section id="art-labels" title={t('labels')}>
            <Labels art={art} projectId={project.project_id} attached={a.labels ?? []} canEdit={may.labelArtifact(role)} onChange={bump} />
          </Section>
          <Section id="art-accessories" title={t('accessories')}>
            <Accessories art={art} projectId={project.project_id} repo={repo} />
          </Section>
          <Section id="art-history" title={t('buildHistory')}>
            <BuildHistory art={art} available={!!a.addition_links?.build_history} />
          </Section>
          {annotations.length > 0 && (
            <Section id="art-annotations" title={t('annotations')}>
              <DataTable<[string, string]>
                caption={t('annotations')}
                rowKey={(r) => r[0]}
                reloadKey={a}
                columns={[
                  { label: t('key'), render: (r) => <code>{r[0]}</code> },
                  { label: t('value'), render: (r) => <span style={{ overflowWrap: 'anywhere' }}>{String(r[1])}</span> },
                ]}
                load={async ({ page: p, pageSize }) => ({ items: annotations.slice((p - 1) * pageSize, p * pageSize), total: annotations.length })}
              />
            </Section>
          )}
        </>
      )}
    </section>
  );
}

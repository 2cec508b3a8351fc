import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { LabelChip } from '../../components/art-LabelList';
import '../../components/art-styles.css';
import { CopyButton } from '../../components/CopyButton';
import { type Column, DataTable } from '../../components/DataTable';
import { Confirm, FormFooter } from '../../components/Dialog';
import { del, get, page, put } from '../../lib/api';
import { type Artifact, artifactRoute, imagePlatform, may, platformString, type Repo, repoPath } from '../../lib/art-types';
import { bytes, date, shortDigest } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import { registryHost, useSession } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: {
    back: 'Back to repositories',
    facts: 'About this repository',
    artifactsCount: 'Artifacts',
    pulls: 'Pulls',
    description: 'Description',
    noDescription: 'No description yet.',
    editDescription: 'Edit description',
    descriptionSaved: 'Description saved.',
    artifacts: 'Artifacts',
    search: 'Search artifacts by tag or digest',
    artifact: 'Artifact',
    tags: 'Tags',
    type: 'Type',
    size: 'Size',
    platforms: 'Platforms',
    labels: 'Labels',
    pushed: 'Push time',
    pull: 'Pull',
    pullOf: 'pull command of {ref}',
    untagged: 'untagged',
    deleteArtifact: 'Delete artifact',
    deleteNote: 'Its tags, signatures and other accessories are deleted too.',
    more: '+{n} more',
  },
  zh: {
    back: '返回镜像仓库列表',
    facts: '镜像仓库信息',
    artifactsCount: '制品数',
    pulls: '下载数',
    description: '描述',
    noDescription: '暂无描述。',
    editDescription: '编辑描述',
    descriptionSaved: '描述已保存。',
    artifacts: '制品',
    search: '按 tag 或摘要搜索制品',
    artifact: '制品',
    tags: 'Tags',
    type: '类型',
    size: '大小',
    platforms: '平台',
    labels: '标签',
    pushed: '推送时间',
    pull: '拉取',
    pullOf: '{ref} 的拉取命令',
    untagged: '无 tag',
    deleteArtifact: '删除制品',
    deleteNote: '其 tag、签名及其他附件也会被删除。',
    more: '另有 {n} 个',
  },
});

/** The platforms of an artifact: each child's of an index, else the image's. */
export function platformsOf(a: Artifact): string[] {
  const refs = a.references ?? [];
  if (refs.length > 0) return refs.map((r) => platformString(r.platform)).filter(Boolean);
  const p = imagePlatform(a);
  return p ? [p] : [];
}

function Description({ project, repo, canEdit }: { project: string; repo: string; canEdit: boolean }) {
  const [data, setData] = useState<Repo | null>(null);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setData(null);
    get<Repo>(repoPath(project, repo)).then(setData, (e) => setError(explain(e)));
  }, [project, repo]);
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await put(repoPath(project, repo), { description: text });
      setData(data ? { ...data, description: text } : data);
      setEditing(false);
      setError('');
      setNotice(t('descriptionSaved'));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Alert>{error}</Alert>
      {data && (
        <dl class="facts" aria-label={t('facts')}>
          <dt>{t('artifactsCount')}</dt>
          <dd>{data.artifact_count ?? 0}</dd>
          <dt>{t('pulls')}</dt>
          <dd>{data.pull_count ?? 0}</dd>
          <dt>{common('created')}</dt>
          <dd>{date(data.creation_time)}</dd>
          <dt>{common('updated')}</dt>
          <dd>{date(data.update_time)}</dd>
        </dl>
      )}
      <section class="art-section">
        <h2 id="repo-desc">{t('description')}</h2>
        {editing ? (
          <form class="art-form" onSubmit={save}>
            <label>
              {t('description')}
              <textarea rows={6} maxLength={65536} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
            </label>
            <FormFooter onCancel={() => setEditing(false)} busy={busy} />
          </form>
        ) : (
          <>
            {data &&
              (data.description ? <p class="description-text">{data.description}</p> : <p class="muted">{t('noDescription')}</p>)}
            {data && canEdit && (
              <button
                type="button"
                class="outline"
                onClick={() => {
                  setText(data.description ?? '');
                  setNotice('');
                  setEditing(true);
                }}
              >
                {t('editDescription')}
              </button>
            )}
            <Alert kind="success">{notice}</Alert>
          </>
        )}
      </section>
    </>
  );
}

export function Repository({ project, role, repo }: ProjectProps & { repo: string }) {
  const { info } = useSession();
  const host = registryHost(info);
  const [reload, setReload] = useState(0);
  const [deleting, setDeleting] = useState<Artifact | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const base = repoPath(project.name, repo);
  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(`${base}/artifacts/${deleting.digest}`);
      setError('');
      setReload((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };
  const pullRef = (a: Artifact) => {
    const tag = a.tags?.[0]?.name;
    return tag ? `${host}/${project.name}/${repo}:${tag}` : `${host}/${project.name}/${repo}@${a.digest}`;
  };
  const columns: Column<Artifact>[] = [
    {
      label: t('artifact'),
      render: (a: Artifact) => (
        <a href={artifactRoute(project.project_id, repo, a.digest)} title={a.digest}>
          <code>{shortDigest(a.digest)}</code>
        </a>
      ),
    },
    {
      label: t('tags'),
      render: (a: Artifact) => {
        const tags = a.tags ?? [];
        if (tags.length === 0) return <span class="muted">{t('untagged')}</span>;
        return (
          <>
            {tags.slice(0, 5).map((x) => (
              <code class="tag-name">{x.name}</code>
            ))}
            {tags.length > 5 && <span class="muted">{t('more', { n: tags.length - 5 })}</span>}
          </>
        );
      },
    },
    {
      label: t('type'),
      render: (a: Artifact) => (
        <>
          {a.type}
          <span class="small-muted">{a.media_type}</span>
        </>
      ),
    },
    { label: t('size'), class: 'num', render: (a: Artifact) => bytes(a.size) },
    {
      label: t('platforms'),
      render: (a: Artifact) => {
        const ps = platformsOf(a);
        return ps.length ? ps.map((p) => <span class="tag-name">{p}</span>) : <span class="muted">—</span>;
      },
    },
    {
      label: t('labels'),
      render: (a: Artifact) => (
        <span class="chips">
          {(a.labels ?? []).map((l) => (
            <LabelChip label={l} />
          ))}
        </span>
      ),
    },
    { label: t('pushed'), sort: 'push_time', render: (a: Artifact) => date(a.push_time) },
    {
      label: t('pull'),
      render: (a: Artifact) => {
        const ref = a.tags?.[0]?.name ? `:${a.tags[0].name}` : `@${shortDigest(a.digest)}`;
        return <CopyButton text={`docker pull ${pullRef(a)}`} what={t('pullOf', { ref })} />;
      },
    },
  ];
  if (may.deleteArtifact(role))
    columns.push({
      label: common('actions'),
      render: (a: Artifact) => (
        <button type="button" class="outline art-danger" title={`${t('deleteArtifact')} ${shortDigest(a.digest)}`} onClick={() => setDeleting(a)}>
          {common('delete')}
        </button>
      ),
    });
  return (
    <section>
      <a class="art-back" href={`/harbor/projects/${project.project_id}/repositories`}>
        ← {t('back')}
      </a>
      <h1>{repo}</h1>
      <Description project={project.name} repo={repo} canEdit={may.editRepo(role)} />
      <section class="art-section">
        <h2 id="repo-artifacts">{t('artifacts')}</h2>
        <Alert>{error}</Alert>
        <DataTable<Artifact>
          caption={t('artifacts')}
          searchLabel={t('search')}
          reloadKey={`${reload}-${base}`}
          rowKey={(a) => a.digest}
          defaultSort="-push_time"
          load={({ page: p, pageSize, sort, search }) => {
            let q: string | undefined;
            if (/^sha256:/i.test(search)) q = `digest=~${search}`;
            else if (search) q = `tags=~${search}`;
            return page<Artifact>(`${base}/artifacts`, {
              page: p,
              page_size: pageSize,
              sort,
              q,
              with_tag: true,
              with_label: true,
            });
          }}
          columns={columns}
        />
      </section>
      <Confirm
        open={!!deleting}
        title={t('deleteArtifact')}
        message={`${common('deleteConfirm', { what: deleting ? `${repo}@${shortDigest(deleting.digest)}` : '' })} ${t('deleteNote')}`}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

import { useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { CopyField } from '../../components/CopyButton';
import { type Column, DataTable, fuzzy } from '../../components/DataTable';
import { Confirm, Dialog } from '../../components/Dialog';
import '../../components/art-styles.css';
import { del, page } from '../../lib/api';
import { may, type Repo, repoPath, repoRoute, shortRepo } from '../../lib/art-types';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import { registryHost, useSession } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: {
    title: 'Repositories',
    search: 'Search repositories by name',
    name: 'Name',
    artifacts: 'Artifacts',
    pulls: 'Pulls',
    pushCommand: 'Push command',
    pushTitle: 'Push commands for {project}',
    pushIntro: 'Sign in to the registry, then tag and push an image (replace the placeholders in capitals).',
    login: 'Sign in',
    loginCmd: 'docker login command',
    docker: 'Docker',
    dockerTag: 'Docker tag command',
    dockerPush: 'Docker push command',
    podman: 'Podman',
    podmanPush: 'Podman push command',
    helm: 'Helm (3.8 or later)',
    helmPush: 'Helm push command',
    oras: 'ORAS',
    orasPush: 'ORAS push command',
    deleteRepo: 'Delete repository',
    deleteNote: 'All its artifacts and tags are deleted too.',
  },
  zh: {
    title: '镜像仓库',
    search: '按名称搜索镜像仓库',
    name: '名称',
    artifacts: '制品数',
    pulls: '下载数',
    pushCommand: '推送命令',
    pushTitle: '推送到 {project} 的命令',
    pushIntro: '先登录镜像仓库，再标记并推送镜像（请替换大写的占位符）。',
    login: '登录',
    loginCmd: 'docker 登录命令',
    docker: 'Docker',
    dockerTag: 'Docker 标记命令',
    dockerPush: 'Docker 推送命令',
    podman: 'Podman',
    podmanPush: 'Podman 推送命令',
    helm: 'Helm（3.8 或更高版本）',
    helmPush: 'Helm 推送命令',
    oras: 'ORAS',
    orasPush: 'ORAS 推送命令',
    deleteRepo: '删除镜像仓库',
    deleteNote: '其中所有的制品和 tag 也会被删除。',
  },
});

/** Harbor's "push command" helper: how to push into this project. */
export function PushCommands({ projectName }: { projectName: string }) {
  const { info } = useSession();
  const [open, setOpen] = useState(false);
  const host = registryHost(info);
  const target = `${host}/${projectName}/REPOSITORY[:TAG]`;
  return (
    <>
      <button type="button" class="secondary" onClick={() => setOpen(true)}>
        {t('pushCommand')}
      </button>
      <Dialog open={open} onClose={() => setOpen(false)} title={t('pushTitle', { project: projectName })} wide>
        <div class="push-commands">
          <p>{t('pushIntro')}</p>
          <h3>{t('login')}</h3>
          <CopyField value={`docker login ${host}`} what={t('loginCmd')} />
          <h3>{t('docker')}</h3>
          <CopyField value={`docker tag SOURCE_IMAGE[:TAG] ${target}`} what={t('dockerTag')} />
          <CopyField value={`docker push ${target}`} what={t('dockerPush')} />
          <h3>{t('podman')}</h3>
          <CopyField value={`podman push IMAGE_ID ${target}`} what={t('podmanPush')} />
          <h3>{t('helm')}</h3>
          <CopyField value={`helm push CHART_PACKAGE oci://${host}/${projectName}`} what={t('helmPush')} />
          <h3>{t('oras')}</h3>
          <CopyField value={`oras push ${target} FILE[:MEDIA_TYPE]`} what={t('orasPush')} />
        </div>
      </Dialog>
    </>
  );
}

export function Repositories({ project, role }: ProjectProps) {
  const [reload, setReload] = useState(0);
  const [deleting, setDeleting] = useState<Repo | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const canDelete = may.deleteRepo(role);
  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(repoPath(project.name, shortRepo(deleting.name, project.name)));
      setError('');
      setReload((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };
  const columns: Column<Repo>[] = [
    {
      label: t('name'),
      sort: 'name',
      render: (r: Repo) => <a href={repoRoute(project.project_id, shortRepo(r.name, project.name))}>{r.name}</a>,
    },
    { label: t('artifacts'), class: 'num', render: (r: Repo) => r.artifact_count ?? 0 },
    { label: t('pulls'), class: 'num', render: (r: Repo) => r.pull_count ?? 0 },
    { label: common('updated'), render: (r: Repo) => date(r.update_time) },
  ];
  if (canDelete)
    columns.push({
      label: common('actions'),
      render: (r: Repo) => (
        <button type="button" class="outline art-danger" title={`${t('deleteRepo')} ${r.name}`} onClick={() => setDeleting(r)}>
          {common('delete')}
        </button>
      ),
    });
  return (
    <section>
      <h2>{t('title')}</h2>
      <Alert>{error}</Alert>
      <DataTable<Repo>
        caption={t('title')}
        searchLabel={t('search')}
        reloadKey={`${reload}-${project.project_id}`}
        rowKey={(r) => r.id}
        defaultSort="name"
        toolbar={may.push(role) && <PushCommands projectName={project.name} />}
        load={({ page: p, pageSize, sort, search }) =>
          page<Repo>(`/projects/${encodeURIComponent(project.name)}/repositories`, {
            page: p,
            page_size: pageSize,
            sort,
            q: fuzzy('name', search),
          })
        }
        columns={columns}
      />
      <Confirm
        open={!!deleting}
        title={t('deleteRepo')}
        message={`${common('deleteConfirm', { what: deleting?.name ?? '' })} ${t('deleteNote')}`}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

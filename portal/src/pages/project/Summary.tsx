import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { QuotaBar } from '../../components/Charts';
import { CopyField } from '../../components/CopyButton';
import { get } from '../../lib/api';
import { bytes, date } from '../../lib/format';
import { explain, messages } from '../../lib/i18n';
import { registryHost, useSession } from '../../lib/session';
import type { ProjectProps, QuotaSummary } from '../../lib/types';

const t = messages({
  en: {
    title: 'Summary',
    repos: 'Repositories',
    members: 'Members by role',
    admins: 'Project admins',
    maintainers: 'Maintainers',
    developers: 'Developers',
    guests: 'Guests',
    limited: 'Limited guests',
    quota: 'Storage',
    quotaOf: 'Storage used by {name}',
    used: '{used} used of {hard}',
    usedNoLimit: '{used} used, no limit',
    owner: 'Owner',
    created: 'Created',
    access: 'Access level',
    public: 'Public: anyone can pull',
    private: 'Private: members only',
    login: 'Log in to push',
    loginWhat: 'login command',
  },
  zh: {
    title: '概要',
    repos: '镜像仓库',
    members: '各角色成员数',
    admins: '项目管理员',
    maintainers: '维护人员',
    developers: '开发者',
    guests: '访客',
    limited: '受限访客',
    quota: '存储',
    quotaOf: '{name} 的已用存储',
    used: '已用 {used}，共 {hard}',
    usedNoLimit: '已用 {used}，不限制',
    owner: '所有者',
    created: '创建时间',
    access: '访问级别',
    public: '公开：任何人可拉取',
    private: '私有：仅成员可访问',
    login: '登录后推送',
    loginWhat: '登录命令',
  },
});

interface Summary {
  repo_count?: number;
  quota?: QuotaSummary;
  project_admin_count?: number;
  maintainer_count?: number;
  developer_count?: number;
  guest_count?: number;
  limited_guest_count?: number;
}

export function ProjectSummary({ project }: ProjectProps) {
  const { info } = useSession();
  const [s, setS] = useState<Summary | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    get<Summary>(`/projects/${project.project_id}/summary`).then(setS, (e) => setError(explain(e)));
  }, [project.project_id]);
  const host = registryHost(info);
  const used = s?.quota?.used?.storage ?? 0;
  const hard = s?.quota?.hard?.storage ?? -1;
  return (
    <section>
      <h2>{t('title')}</h2>
      <Alert>{error}</Alert>
      {s && (
        <div class="grid">
          <article>
            <dl class="facts">
              <dt>{t('access')}</dt>
              <dd>{project.metadata?.public === 'true' ? t('public') : t('private')}</dd>
              <dt>{t('owner')}</dt>
              <dd>{project.owner_name ?? '—'}</dd>
              <dt>{t('created')}</dt>
              <dd>{date(project.creation_time)}</dd>
              <dt>{t('repos')}</dt>
              <dd>{s.repo_count ?? 0}</dd>
            </dl>
            <p>{t('login')}</p>
            <CopyField value={`docker login ${host}`} what={t('loginWhat')} />
          </article>
          {s.quota && (
            <article>
              <h3>{t('quota')}</h3>
              <QuotaBar used={used} hard={hard} label={t('quotaOf', { name: project.name })} />
              <p>{hard < 0 ? t('usedNoLimit', { used: bytes(used) }) : t('used', { used: bytes(used), hard: bytes(hard) })}</p>
            </article>
          )}
          {s.project_admin_count !== undefined && (
            <article>
              <h3>{t('members')}</h3>
              <dl class="facts">
                <dt>{t('admins')}</dt>
                <dd>{s.project_admin_count}</dd>
                <dt>{t('maintainers')}</dt>
                <dd>{s.maintainer_count ?? 0}</dd>
                <dt>{t('developers')}</dt>
                <dd>{s.developer_count ?? 0}</dd>
                <dt>{t('guests')}</dt>
                <dd>{s.guest_count ?? 0}</dd>
                <dt>{t('limited')}</dt>
                <dd>{s.limited_guest_count ?? 0}</dd>
              </dl>
            </article>
          )}
        </div>
      )}
    </section>
  );
}

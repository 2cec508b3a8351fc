import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { get } from '../../lib/api';
import { explain, messages } from '../../lib/i18n';
import { match, useLocation } from '../../lib/router';
import { ROLE, useSession } from '../../lib/session';
import type { Project, ProjectProps } from '../../lib/types';
import { roleNames } from '../Projects';
import { Artifact } from './Artifact';
import { ProjectLabels } from './Labels';
import { ProjectLogs } from './Logs';
import { Members } from './Members';
import { ProjectPolicy } from './Policy';
import { Repositories } from './Repositories';
import { Repository } from './Repository';
import { ProjectRobots } from './Robots';
import { ProjectSummary } from './Summary';
import { ProjectWebhooks } from './Webhooks';

const t = messages({
  en: {
    tabs: 'Project sections',
    summary: 'Summary',
    repositories: 'Repositories',
    members: 'Members',
    labels: 'Labels',
    policy: 'Policy',
    robots: 'Robot Accounts',
    webhooks: 'Webhooks',
    logs: 'Logs',
    projects: 'Projects',
    breadcrumb: 'Breadcrumb',
    yourRole: 'Your role: {role}',
    public: 'Public',
    private: 'Private',
  },
  zh: {
    tabs: '项目栏目',
    summary: '概要',
    repositories: '镜像仓库',
    members: '成员',
    labels: '标签',
    policy: '策略',
    robots: '机器人账户',
    webhooks: 'Webhooks',
    logs: '日志',
    projects: '项目',
    breadcrumb: '导航路径',
    yourRole: '您的角色：{role}',
    public: '公开',
    private: '私有',
  },
});

type Tab = { key: string; label: string; visible: (p: ProjectProps) => boolean };

const TABS: Tab[] = [
  { key: 'summary', label: 'summary', visible: () => true },
  { key: 'repositories', label: 'repositories', visible: () => true },
  { key: 'members', label: 'members', visible: (p) => p.role !== 0 },
  { key: 'labels', label: 'labels', visible: (p) => p.role !== 0 },
  { key: 'policy', label: 'policy', visible: (p) => p.role === ROLE.projectAdmin || p.role === ROLE.maintainer },
  { key: 'robot-account', label: 'robots', visible: (p) => p.role === ROLE.projectAdmin },
  { key: 'webhook', label: 'webhooks', visible: (p) => p.role === ROLE.projectAdmin || p.role === ROLE.maintainer },
  { key: 'logs', label: 'logs', visible: (p) => p.role !== 0 },
];

export function ProjectLayout({ id }: { id: string }) {
  const { path } = useLocation();
  const { user } = useSession();
  const [project, setProject] = useState<Project | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    setProject(null);
    get<Project>(`/projects/${encodeURIComponent(id)}`).then(setProject, (e) => setError(explain(e)));
  }, [id]);
  if (error) return <Alert>{error}</Alert>;
  if (!project) return <p aria-busy="true" />;
  const admin = !!user?.sysadmin_flag;
  const role = admin ? ROLE.projectAdmin : project.current_user_role_id ?? 0;
  const props: ProjectProps = { project, role, admin };
  const base = `/harbor/projects/${project.project_id}`;

  let body: ComponentChildren = null;
  let tab = 'repositories';
  let m: Record<string, string> | null;
  if ((m = match(`${base}/repositories/:repo/artifacts-tab/artifacts/:digest`, path))) {
    body = <Artifact {...props} repo={m.repo} digest={m.digest} />;
  } else if ((m = match(`${base}/repositories/:repo`, path))) {
    body = <Repository {...props} repo={m.repo} />;
  } else {
    tab = path.slice(base.length + 1).split('/')[0] || 'repositories';
    const pages: Record<string, ComponentChildren> = {
      summary: <ProjectSummary {...props} />,
      repositories: <Repositories {...props} />,
      members: <Members {...props} />,
      labels: <ProjectLabels {...props} />,
      policy: <ProjectPolicy {...props} />,
      'robot-account': <ProjectRobots {...props} />,
      webhook: <ProjectWebhooks {...props} />,
      logs: <ProjectLogs {...props} />,
    };
    body = pages[tab] ?? pages.repositories;
  }
  const inRepo = path.startsWith(`${base}/repositories/`);
  return (
    <section class="project">
      <nav aria-label={t('breadcrumb')} class="breadcrumb">
        <ul>
          <li>
            <a href="/harbor/projects">{t('projects')}</a>
          </li>
          <li>{project.name}</li>
        </ul>
      </nav>
      <div class="project-head">
        {!inRepo && <h1>{project.name}</h1>}
        {inRepo && <p class="project-name">{project.name}</p>}
        <span class="badge">{project.metadata?.public === 'true' ? t('public') : t('private')}</span>
        <span class="muted">{t('yourRole', { role: roleNames(`r${role}` as 'r0') })}</span>
      </div>
      {!inRepo && (
        <nav class="tabs" aria-label={t('tabs')}>
          <ul>
            {TABS.filter((x) => x.visible(props)).map((x) => (
              <li>
                <a href={`${base}/${x.key}`} aria-current={tab === x.key ? 'page' : undefined}>
                  {t(x.label as 'summary')}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      )}
      {body}
    </section>
  );
}

import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, logout, setUnauthorizedHandler } from './lib/api';
import { LANGS, type Lang, lang, messages, setLang } from './lib/i18n';
import { match, navigate, onLinkClick, useLocation } from './lib/router';
import { type CurrentUser, SessionContext, type SystemInfo, useSession } from './lib/session';
import { setTheme, theme } from './lib/theme';
import { SignIn } from './pages/SignIn';
import { Projects } from './pages/Projects';
import { ProjectLayout } from './pages/project/ProjectLayout';
import { Users } from './pages/admin/Users';
import { SystemRobots } from './pages/admin/Robots';
import { Registries } from './pages/admin/Registries';
import { Replications } from './pages/admin/Replications';
import { GlobalLabels } from './pages/admin/Labels';
import { AuditLog } from './pages/admin/AuditLog';
import { GarbageCollection } from './pages/admin/Gc';
import { Configuration } from './pages/admin/Configs';

const t = messages({
  en: {
    skip: 'Skip to content',
    nav: 'Main',
    projects: 'Projects',
    logs: 'Logs',
    admin: 'Administration',
    users: 'Users',
    robots: 'Robot Accounts',
    registries: 'Registries',
    replications: 'Replications',
    labels: 'Labels',
    gc: 'Clean Up',
    configs: 'Configuration',
    signOut: 'Sign out',
    signedInAs: 'Signed in as {name}',
    language: 'Language',
    dark: 'Dark theme',
    notFound: 'Page not found',
    notFoundText: 'There is no page at this address.',
    backHome: 'Go to projects',
    adminOnly: 'Only system administrators can see this page.',
  },
  zh: {
    skip: '跳到主要内容',
    nav: '主导航',
    projects: '项目',
    logs: '日志',
    admin: '系统管理',
    users: '用户管理',
    robots: '机器人账户',
    registries: '仓库管理',
    replications: '复制管理',
    labels: '标签',
    gc: '清理',
    configs: '配置管理',
    signOut: '退出登录',
    signedInAs: '当前用户：{name}',
    language: '语言',
    dark: '深色主题',
    notFound: '页面不存在',
    notFoundText: '此地址没有对应的页面。',
    backHome: '前往项目列表',
    adminOnly: '只有系统管理员可以查看此页面。',
  },
});

type Render = (p: Record<string, string>, admin: boolean) => ComponentChildren;

/** Harbor's portal routes; project pages share one layout. */
const ROUTES: [string, Render, { adminOnly?: boolean }?][] = [
  ['/harbor/projects', () => <Projects />],
  ['/harbor/projects/:id/*', (p) => <ProjectLayout id={p.id} />],
  ['/harbor/logs', () => <AuditLog />],
  ['/harbor/users', () => <Users />, { adminOnly: true }],
  ['/harbor/robot-accounts', () => <SystemRobots />, { adminOnly: true }],
  ['/harbor/registries', () => <Registries />, { adminOnly: true }],
  ['/harbor/replications', () => <Replications />, { adminOnly: true }],
  ['/harbor/labels', () => <GlobalLabels />, { adminOnly: true }],
  ['/harbor/clearing-job/gc', () => <GarbageCollection />, { adminOnly: true }],
  ['/harbor/configs', () => <Configuration />, { adminOnly: true }],
];

function NavLink({ href, children, path }: { href: string; children: ComponentChildren; path: string }) {
  const here = path === href || path.startsWith(`${href}/`);
  return (
    <li>
      <a href={href} aria-current={here ? 'page' : undefined}>
        {children}
      </a>
    </li>
  );
}

function Shell({ user, path, children, onLang }: { user: CurrentUser; path: string; children: ComponentChildren; onLang: (l: Lang) => void }) {
  const [dark, setDark] = useState(theme() === 'dark');
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        {t('skip')}
      </a>
      <header class="topbar">
        <a class="brand" href="/harbor/projects">
          <span aria-hidden="true">⚓</span> Berth
        </a>
        <div class="topbar-tools">
          <label class="inline">
            <span class="visually-hidden">{t('language')}</span>
            <select aria-label={t('language')} value={lang()} onChange={(e) => onLang((e.target as HTMLSelectElement).value as Lang)}>
              {LANGS.map((l) => (
                <option value={l.code}>{l.label}</option>
              ))}
            </select>
          </label>
          <label class="inline switch">
            <input
              type="checkbox"
              role="switch"
              checked={dark}
              onChange={(e) => {
                const on = (e.target as HTMLInputElement).checked;
                setDark(on);
                setTheme(on ? 'dark' : 'light');
              }}
            />
            {t('dark')}
          </label>
          <span class="muted user-name">{t('signedInAs', { name: user.username })}</span>
          <SignOutButton />
        </div>
      </header>
      <div class="body">
        <nav class="sidenav" aria-label={t('nav')}>
          <ul>
            <NavLink href="/harbor/projects" path={path}>
              {t('projects')}
            </NavLink>
            <NavLink href="/harbor/logs" path={path}>
              {t('logs')}
            </NavLink>
          </ul>
          {user.sysadmin_flag && (
            <>
              <h2 class="nav-heading">{t('admin')}</h2>
              <ul>
                <NavLink href="/harbor/users" path={path}>
                  {t('users')}
                </NavLink>
                <NavLink href="/harbor/robot-accounts" path={path}>
                  {t('robots')}
                </NavLink>
                <NavLink href="/harbor/registries" path={path}>
                  {t('registries')}
                </NavLink>
                <NavLink href="/harbor/replications" path={path}>
                  {t('replications')}
                </NavLink>
                <NavLink href="/harbor/labels" path={path}>
                  {t('labels')}
                </NavLink>
                <NavLink href="/harbor/clearing-job/gc" path={path}>
                  {t('gc')}
                </NavLink>
                <NavLink href="/harbor/configs" path={path}>
                  {t('configs')}
                </NavLink>
              </ul>
            </>
          )}
        </nav>
        <main id="main" tabIndex={-1}>
          {children}
        </main>
      </div>
    </div>
  );
}

function SignOutButton() {
  const { signOut } = useSession();
  return (
    <button type="button" class="outline secondary" onClick={signOut}>
      {t('signOut')}
    </button>
  );
}

function NotFound({ message }: { message?: string }) {
  return (
    <section>
      <h1>{t('notFound')}</h1>
      <p>{message ?? t('notFoundText')}</p>
      <a href="/harbor/projects">{t('backHome')}</a>
    </section>
  );
}

export function App() {
  const { path, query } = useLocation();
  const [user, setUser] = useState<CurrentUser | null>(null);
  const [info, setInfo] = useState<SystemInfo | null>(null);
  const [ready, setReady] = useState(false);
  const [, setLangState] = useState(lang());

  const refresh = async () => {
    try {
      setUser(await get<CurrentUser>('/users/current'));
    } catch {
      setUser(null);
    }
    // The settings the portal follows (project creation, self-registration) may have changed.
    get<SystemInfo>('/systeminfo').then(setInfo, () => {});
  };
  const signOut = async () => {
    try {
      await logout();
    } finally {
      setUser(null);
      navigate('/harbor/sign-in', true);
    }
  };

  useEffect(() => {
    setUnauthorizedHandler(() => {
      setUser(null);
      const here = location.pathname + location.search;
      if (!here.startsWith('/harbor/sign-in')) navigate(`/harbor/sign-in?redirect_url=${encodeURIComponent(here)}`, true);
    });
    Promise.all([refresh(), get<SystemInfo>('/systeminfo').then(setInfo, () => {})]).finally(() => setReady(true));
    document.addEventListener('click', onLinkClick);
    return () => document.removeEventListener('click', onLinkClick);
  }, []);

  // Focus the page's heading after navigation, so screen readers hear the new page.
  useEffect(() => {
    const h = document.querySelector<HTMLElement>('main h1');
    if (h && ready) {
      h.tabIndex = -1;
      h.focus({ preventScroll: true });
    }
  }, [path, ready]);

  if (!ready) return <p aria-busy="true" class="boot" />;

  const onLang = (l: Lang) => {
    setLang(l);
    setLangState(l);
  };

  let content: ComponentChildren;
  if (path === '/harbor/sign-in') {
    if (user) {
      navigate('/harbor/projects', true);
      return null;
    }
    content = <SignIn redirect={query.get('redirect_url') ?? '/harbor/projects'} />;
  } else if (!user) {
    const here = path + location.search;
    navigate(`/harbor/sign-in?redirect_url=${encodeURIComponent(here)}`, true);
    return null;
  } else if (path === '/' || path === '/harbor' || path === '/harbor/') {
    navigate('/harbor/projects', true);
    return null;
  } else {
    let page: ComponentChildren = <NotFound />;
    for (const [pattern, render, opts] of ROUTES) {
      const p = match(pattern, path);
      if (p) {
        page = opts?.adminOnly && !user.sysadmin_flag ? <NotFound message={t('adminOnly')} /> : render(p, user.sysadmin_flag);
        break;
      }
    }
    content = (
      <Shell user={user} path={path} onLang={onLang}>
        {page}
      </Shell>
    );
  }
  return (
    <SessionContext.Provider value={{ user, info, refresh, signOut }} key={lang()}>
      {content}
    </SessionContext.Provider>
  );
}

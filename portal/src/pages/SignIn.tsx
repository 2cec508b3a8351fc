import { useState } from 'preact/hooks';
import { Alert } from '../components/Alert';
import { login } from '../lib/api';
import { explain, messages } from '../lib/i18n';
import { navigate } from '../lib/router';
import { useSession } from '../lib/session';

const t = messages({
  en: {
    title: 'Sign in to Berth',
    username: 'Username',
    password: 'Password',
    signIn: 'Sign in',
    wrong: 'Invalid user name or password.',
    viaOidc: 'Sign in via {provider}',
    ldap: 'Your directory (LDAP) account works here too.',
    tagline: 'A container registry for your projects, people and images.',
  },
  zh: {
    title: '登录 Berth',
    username: '用户名',
    password: '密码',
    signIn: '登录',
    wrong: '用户名或密码错误。',
    viaOidc: '通过 {provider} 登录',
    ldap: '也可以使用目录服务（LDAP）账号登录。',
    tagline: '为您的项目、成员与镜像而建的容器镜像仓库。',
  },
});

export function SignIn({ redirect }: { redirect: string }) {
  const { refresh, info } = useSession();
  const [principal, setPrincipal] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await login(principal, password);
      await refresh();
      navigate(redirect.startsWith('/harbor') ? redirect : '/harbor/projects', true);
    } catch (err) {
      setError((err as { status?: number }).status === 401 ? t('wrong') : explain(err));
      setBusy(false);
    }
  };

  return (
    <main class="sign-in" id="main">
      <article>
        <header>
          <div class="brand-large" aria-hidden="true">
            ⚓
          </div>
          <h1>{t('title')}</h1>
          <p class="muted">{t('tagline')}</p>
        </header>
        <form onSubmit={submit} aria-describedby={error ? 'signin-error' : undefined}>
          <label>
            {t('username')}
            <input
              name="principal"
              autocomplete="username"
              required
              autofocus
              value={principal}
              onInput={(e) => setPrincipal((e.target as HTMLInputElement).value)}
            />
          </label>
          <label>
            {t('password')}
            <input
              name="password"
              type="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
          </label>
          <div id="signin-error">
            <Alert>{error}</Alert>
          </div>
          <button type="submit" aria-busy={busy} disabled={busy}>
            {t('signIn')}
          </button>
        </form>
        {info?.auth_mode === 'oidc_auth' && (
          <a role="button" class="secondary" href="/c/oidc/login">
            {t('viaOidc', { provider: info.oidc_provider_name || 'OIDC' })}
          </a>
        )}
        {info?.auth_mode === 'ldap_auth' && <p class="muted">{t('ldap')}</p>}
      </article>
    </main>
  );
}

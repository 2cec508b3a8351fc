// Configuration: the system settings `/configurations` exposes, each as
// `{value, editable}`. Known settings get Harbor's labels; any other the
// server adds is shown too (read-only ones as disabled inputs). Saving
// sends only what changed.
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { checked, val } from '../../components/pol-Common';
import { get, put } from '../../lib/api';
import { common, explain, messages } from '../../lib/i18n';

const t = messages({
  en: {
    title: 'Configuration',
    auth: 'Authentication',
    system: 'System Settings',
    auth_mode: 'Auth Mode',
    db_auth: 'Database',
    ldap_auth: 'LDAP',
    oidc_auth: 'OIDC',
    self_registration: 'Allow Self-Registration',
    selfHelp: 'Lets anyone create an account from the sign-in page.',
    project_creation_restriction: 'Project Creation',
    everyone: 'Everyone',
    adminonly: 'Admin Only',
    creationHelp: 'Who may create projects.',
    webhook_allow_private: 'Allow Private Network Addresses',
    privateHelp: 'Lets webhook targets and registry endpoints be loopback or private addresses (link-local and cloud metadata addresses stay refused).',
    robot_token_duration: 'Robot Token Expiration (Days)',
    robot_name_prefix: 'Robot Name Prefix',
    storage_per_project: 'Default Project Quota Limit (bytes)',
    audit_log_forward_endpoint: 'Audit Log Forward Endpoint',
    skip_audit_log_database: 'Skip Audit Log Database',
    readOnly: 'Read-only: set on the server.',
    noChanges: 'Nothing has changed.',
    other: 'Other settings',
  },
  zh: {
    title: '配置管理',
    auth: '认证',
    system: '系统设置',
    auth_mode: '认证模式',
    db_auth: '数据库',
    ldap_auth: 'LDAP',
    oidc_auth: 'OIDC',
    self_registration: '允许自注册',
    selfHelp: '允许任何人在登录页自行注册账户。',
    project_creation_restriction: '项目创建',
    everyone: '所有人',
    adminonly: '仅管理员',
    creationHelp: '谁可以创建项目。',
    webhook_allow_private: '允许私有网络地址',
    privateHelp: '允许 Webhook 目标和仓库端点使用回环或私有地址（链路本地和云元数据地址始终拒绝）。',
    robot_token_duration: '机器人令牌过期时间（天）',
    robot_name_prefix: '机器人名称前缀',
    storage_per_project: '默认项目配额（字节）',
    audit_log_forward_endpoint: '审计日志转发地址',
    skip_audit_log_database: '跳过审计日志数据库',
    readOnly: '只读：由服务器设置。',
    noChanges: '没有任何更改。',
    other: '其他设置',
  },
});

type Value = string | number | boolean | null;
type Config = Record<string, { value: Value; editable: boolean }>;

/** Settings this page lays out itself; anything else goes under "Other settings". */
const KNOWN = ['auth_mode', 'self_registration', 'project_creation_restriction', 'webhook_allow_private'];
const LABELLED = new Set([...KNOWN, 'robot_token_duration', 'robot_name_prefix', 'storage_per_project', 'audit_log_forward_endpoint', 'skip_audit_log_database']);

function labelOf(key: string): string {
  return LABELLED.has(key) ? t(key as 'auth_mode') : key;
}

export function Configuration(_props: Record<string, unknown>) {
  const [config, setConfig] = useState<Config | null>(null);
  const [values, setValues] = useState<Record<string, Value>>({});
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  const load = () =>
    get<Config>('/configurations').then(
      (c) => {
        setConfig(c);
        setValues(Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v?.value ?? null])));
      },
      (e) => setError(explain(e)),
    );
  useEffect(() => {
    load();
  }, []);

  if (!config) {
    return (
      <section>
        <h1>{t('title')}</h1>
        <Alert>{error}</Alert>
        {!error && <p aria-busy="true">{common('loading')}</p>}
      </section>
    );
  }

  const set = (k: string, v: Value) => {
    setValues({ ...values, [k]: v });
    setNotice('');
  };
  const editable = (k: string) => !!config[k]?.editable;
  const changed = Object.keys(config).filter((k) => config[k].editable && values[k] !== config[k].value);

  const save = async (e: Event) => {
    e.preventDefault();
    setError('');
    setNotice('');
    if (changed.length === 0) {
      setNotice(t('noChanges'));
      return;
    }
    setBusy(true);
    try {
      await put('/configurations', Object.fromEntries(changed.map((k) => [k, values[k]])));
      await load();
      setNotice(common('saved'));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  /** A generic field for a setting: checkbox, number or text by its value's type. */
  const field = (k: string) => {
    const v = values[k];
    const ro = !editable(k);
    const help = ro ? <small id={`cfg-${k}-help`}>{t('readOnly')}</small> : null;
    if (typeof config[k].value === 'boolean') {
      return (
        <div key={k}>
          <label>
            <input type="checkbox" role="switch" checked={!!v} disabled={ro} aria-describedby={ro ? `cfg-${k}-help` : undefined} onChange={(e) => set(k, checked(e))} />
            {labelOf(k)}
          </label>
          {help}
        </div>
      );
    }
    const numeric = typeof config[k].value === 'number';
    return (
      <label key={k}>
        {labelOf(k)}
        <input
          type={numeric ? 'number' : 'text'}
          value={v === null ? '' : String(v)}
          disabled={ro}
          aria-describedby={ro ? `cfg-${k}-help` : undefined}
          onInput={(e) => set(k, numeric ? Number(val(e)) : val(e))}
        />
        {help}
      </label>
    );
  };

  const others = Object.keys(config).filter((k) => !KNOWN.includes(k));
  const mode = String(values.auth_mode ?? '');

  return (
    <section>
      <h1>{t('title')}</h1>
      <form onSubmit={save}>
        {'auth_mode' in config && (
          <fieldset>
            <legend>{t('auth')}</legend>
            <label>
              {t('auth_mode')}
              <input
                value={['db_auth', 'ldap_auth', 'oidc_auth'].includes(mode) ? t(mode as 'db_auth') : mode}
                disabled
                aria-describedby="cfg-auth-help"
              />
            </label>
            <small class="field-help" id="cfg-auth-help">{t('readOnly')}</small>
            {'self_registration' in config && (
              <>
              <label>
                <input
                  type="checkbox"
                  role="switch"
                  checked={!!values.self_registration}
                  disabled={!editable('self_registration')}
                  aria-describedby="cfg-self-help"
                  onChange={(e) => set('self_registration', checked(e))}
                />
                {t('self_registration')}
              </label>
              <small id="cfg-self-help">{t('selfHelp')}</small>
              </>
            )}
          </fieldset>
        )}
        <fieldset>
          <legend>{t('system')}</legend>
          {'project_creation_restriction' in config && (
            <>
              <label>
                {t('project_creation_restriction')}
                <select
                  value={String(values.project_creation_restriction ?? 'everyone')}
                  disabled={!editable('project_creation_restriction')}
                  aria-describedby="cfg-creation-help"
                  onChange={(e) => set('project_creation_restriction', val(e))}
                >
                  <option value="everyone">{t('everyone')}</option>
                  <option value="adminonly">{t('adminonly')}</option>
                </select>
              </label>
              <small class="field-help" id="cfg-creation-help">{t('creationHelp')}</small>
            </>
          )}
          {'webhook_allow_private' in config && (
            <>
            <label>
              <input
                type="checkbox"
                role="switch"
                checked={!!values.webhook_allow_private}
                disabled={!editable('webhook_allow_private')}
                aria-describedby="cfg-private-help"
                onChange={(e) => set('webhook_allow_private', checked(e))}
              />
              {t('webhook_allow_private')}
            </label>
            <small id="cfg-private-help">{t('privateHelp')}</small>
            </>
          )}
          {!('auth_mode' in config) && 'self_registration' in config && field('self_registration')}
        </fieldset>
        {others.length > 0 && (
          <fieldset>
            <legend>{t('other')}</legend>
            {others.map(field)}
          </fieldset>
        )}
        <Alert>{error}</Alert>
        <Alert kind="success">{notice}</Alert>
        <div style={{ display: 'flex', gap: '0.5rem' }}>
          <button type="button" class="secondary" style={{ width: 'auto' }} disabled={busy || changed.length === 0} onClick={() => load()}>
            {common('cancel')}
          </button>
          <button type="submit" style={{ width: 'auto' }} aria-busy={busy} disabled={busy}>
            {common('save')}
          </button>
        </div>
      </form>
    </section>
  );
}

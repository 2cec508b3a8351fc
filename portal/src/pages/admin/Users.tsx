import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { DataTable, fuzzy } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { FieldHelp } from '../../components/acc-Help';
import { create, del, page, put } from '../../lib/api';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import { useSession } from '../../lib/session';

const t = messages({
  en: {
    title: 'Users',
    search: 'Search users',
    newUser: 'New user',
    username: 'Username',
    usernameHelp: 'Used to sign in and in docker login; cannot be changed later.',
    email: 'Email',
    fullName: 'Full name',
    comment: 'Comment',
    password: 'Password',
    confirmPassword: 'Confirm password',
    newPassword: 'New password',
    passwordRule: '8 to 128 characters, with at least one uppercase letter, one lowercase letter and one number.',
    passwordWeak: 'The password does not follow the rule: 8 to 128 characters, with at least one uppercase letter, one lowercase letter and one number.',
    mismatch: 'The two passwords differ.',
    admin: 'Administrator',
    you: '(you)',
    makeAdmin: 'Set as administrator',
    revokeAdmin: 'Revoke administrator',
    resetPassword: 'Reset password',
    resetTitle: 'Reset the password of {name}',
    resetHelp: 'The user\'s current sessions and tokens stop working.',
    deleteTitle: 'Delete user',
    createdUser: 'User {name} was created.',
    nowAdmin: '{name} is now a system administrator.',
    noLongerAdmin: '{name} is no longer a system administrator.',
    passwordReset: 'The password of {name} was reset.',
    deleted: '{name} was deleted.',
    builtin: 'The built-in admin account is not listed here.',
  },
  zh: {
    title: '用户',
    search: '搜索用户',
    newUser: '新建用户',
    username: '用户名',
    usernameHelp: '用于登录及 docker login，创建后不可修改。',
    email: '邮箱',
    fullName: '全名',
    comment: '备注',
    password: '密码',
    confirmPassword: '确认密码',
    newPassword: '新密码',
    passwordRule: '长度 8 到 128 个字符，至少包含一个大写字母、一个小写字母和一个数字。',
    passwordWeak: '密码不符合规则：长度 8 到 128 个字符，至少包含一个大写字母、一个小写字母和一个数字。',
    mismatch: '两次输入的密码不一致。',
    admin: '管理员',
    you: '（您）',
    makeAdmin: '设为管理员',
    revokeAdmin: '取消管理员',
    resetPassword: '重置密码',
    resetTitle: '重置 {name} 的密码',
    resetHelp: '该用户当前的会话和令牌将失效。',
    deleteTitle: '删除用户',
    createdUser: '已创建用户 {name}。',
    nowAdmin: '{name} 现在是系统管理员。',
    noLongerAdmin: '{name} 不再是系统管理员。',
    passwordReset: '已重置 {name} 的密码。',
    deleted: '已删除 {name}。',
    builtin: '内置的 admin 账户不在此列出。',
  },
});

interface UserResp {
  user_id: number;
  username: string;
  email?: string;
  realname?: string;
  comment?: string;
  sysadmin_flag: boolean;
  creation_time?: string;
}

/** Berth's password rule (shared/src/iam/password.rs). */
export function passwordOk(p: string): boolean {
  const n = [...p].length;
  return n >= 8 && n <= 128 && /[A-Z]/.test(p) && /[a-z]/.test(p) && /[0-9]/.test(p);
}

function PasswordFields({ label, value, again, onValue, onAgain, idPrefix }: {
  label: string;
  value: string;
  again: string;
  onValue: (v: string) => void;
  onAgain: (v: string) => void;
  idPrefix: string;
}) {
  return (
    <div class="grid">
      <div>
        <label>
          {label}
          <input
            type="password"
            required
            autoComplete="new-password"
            maxLength={128}
            value={value}
            aria-describedby={`${idPrefix}-rule`}
            onInput={(e) => onValue((e.target as HTMLInputElement).value)}
          />
        </label>
        <FieldHelp id={`${idPrefix}-rule`}>{t('passwordRule')}</FieldHelp>
      </div>
      <label>
        {t('confirmPassword')}
        <input
          type="password"
          required
          autoComplete="new-password"
          value={again}
          aria-invalid={again && again !== value ? 'true' : undefined}
          onInput={(e) => onAgain((e.target as HTMLInputElement).value)}
        />
      </label>
    </div>
  );
}

function NewUser({ open, onClose, onDone }: { open: boolean; onClose: () => void; onDone: (msg: string) => void }) {
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [realname, setRealname] = useState('');
  const [comment, setComment] = useState('');
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!open) return;
    setUsername('');
    setEmail('');
    setRealname('');
    setComment('');
    setPassword('');
    setAgain('');
    setError('');
  }, [open]);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!passwordOk(password)) return setError(t('passwordWeak'));
    if (password !== again) return setError(t('mismatch'));
    setBusy(true);
    setError('');
    try {
      const name = username.trim();
      await create('/users', { username: name, email: email.trim(), realname: realname.trim(), comment, password });
      onDone(t('createdUser', { name }));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onClose={onClose} title={t('newUser')} wide>
      <form onSubmit={submit}>
        <div class="grid">
          <div>
            <label>
              {t('username')}
              <input
                required
                maxLength={255}
                autoComplete="off"
                value={username}
                aria-describedby="user-name-help"
                onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
              />
            </label>
            <FieldHelp id="user-name-help">{t('usernameHelp')}</FieldHelp>
          </div>
          <label>
            {t('email')}
            <input type="email" maxLength={255} autoComplete="off" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
          </label>
        </div>
        <div class="grid">
          <label>
            {t('fullName')}
            <input autoComplete="off" value={realname} onInput={(e) => setRealname((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            {t('comment')}
            <input autoComplete="off" value={comment} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
          </label>
        </div>
        <PasswordFields label={t('password')} value={password} again={again} onValue={setPassword} onAgain={setAgain} idPrefix="user-pw" />
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} />
      </form>
    </Dialog>
  );
}

function ResetPassword({ user, onClose, onDone }: { user: UserResp | null; onClose: () => void; onDone: (msg: string) => void }) {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setPassword('');
    setAgain('');
    setError('');
  }, [user]);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!user) return;
    if (!passwordOk(password)) return setError(t('passwordWeak'));
    if (password !== again) return setError(t('mismatch'));
    setBusy(true);
    setError('');
    try {
      await put(`/users/${user.user_id}/password`, { new_password: password });
      onDone(t('passwordReset', { name: user.username }));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={!!user} onClose={onClose} title={t('resetTitle', { name: user?.username ?? '' })}>
      <form onSubmit={submit}>
        <p class="muted">{t('resetHelp')}</p>
        <PasswordFields label={t('newPassword')} value={password} again={again} onValue={setPassword} onAgain={setAgain} idPrefix="reset-pw" />
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} />
      </form>
    </Dialog>
  );
}

export function Users() {
  const { user: me } = useSession();
  const [creating, setCreating] = useState(false);
  const [resetting, setResetting] = useState<UserResp | null>(null);
  const [deleting, setDeleting] = useState<UserResp | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [reload, setReload] = useState(0);
  const done = (msg: string) => {
    setCreating(false);
    setResetting(null);
    setDeleting(null);
    setError('');
    setNotice(msg);
    setReload((n) => n + 1);
  };
  const toggleAdmin = async (u: UserResp) => {
    setError('');
    setNotice('');
    try {
      await put(`/users/${u.user_id}/sysadmin`, { sysadmin_flag: !u.sysadmin_flag });
      done(t(u.sysadmin_flag ? 'noLongerAdmin' : 'nowAdmin', { name: u.username }));
    } catch (err) {
      setError(explain(err));
    }
  };
  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(`/users/${deleting.user_id}`);
      done(t('deleted', { name: deleting.username }));
    } catch (err) {
      setDeleting(null);
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h1>{t('title')}</h1>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      <DataTable<UserResp>
        caption={t('title')}
        searchLabel={t('search')}
        reloadKey={reload}
        rowKey={(u) => u.user_id}
        toolbar={
          <button type="button" onClick={() => setCreating(true)}>
            + {t('newUser')}
          </button>
        }
        load={({ page: p, pageSize, search }) => page<UserResp>('/users', { page: p, page_size: pageSize, q: fuzzy('username', search) })}
        columns={[
          {
            label: t('username'),
            render: (u) => (
              <>
                <span id={`user-${u.user_id}`}>{u.username}</span>
                {u.user_id === me?.user_id && <span class="muted"> {t('you')}</span>}
                {u.realname && (
                  <>
                    <br />
                    <small class="muted">{u.realname}</small>
                  </>
                )}
              </>
            ),
          },
          { label: t('admin'), render: (u) => (u.sysadmin_flag ? common('yes') : common('no')) },
          { label: t('email'), render: (u) => u.email || '—' },
          { label: common('created'), render: (u) => date(u.creation_time) },
          {
            label: common('actions'),
            render: (u) => {
              const self = u.user_id === me?.user_id;
              return (
                <div class="acc-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                  {!self && (
                    <button type="button" class="outline" aria-describedby={`user-${u.user_id}`} onClick={() => toggleAdmin(u)}>
                      {u.sysadmin_flag ? t('revokeAdmin') : t('makeAdmin')}
                    </button>
                  )}
                  {!self && (
                    <button type="button" class="outline" aria-describedby={`user-${u.user_id}`} onClick={() => setResetting(u)}>
                      {t('resetPassword')}
                    </button>
                  )}
                  {!self && (
                    <button type="button" class="outline danger" aria-describedby={`user-${u.user_id}`} onClick={() => setDeleting(u)}>
                      {common('delete')}
                    </button>
                  )}
                </div>
              );
            },
          },
        ]}
      />
      <p class="muted">
        <small>{t('builtin')}</small>
      </p>
      <NewUser open={creating} onClose={() => setCreating(false)} onDone={done} />
      <ResetPassword user={resetting} onClose={() => setResetting(null)} onDone={done} />
      <Confirm
        open={!!deleting}
        title={t('deleteTitle')}
        message={common('deleteConfirm', { what: deleting?.username ?? '' })}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

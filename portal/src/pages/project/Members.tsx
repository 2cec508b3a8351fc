import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { DataTable } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { FieldHelp } from '../../components/acc-Help';
import { create, del, get, page, put } from '../../lib/api';
import { common, explain, messages } from '../../lib/i18n';
import { ROLE, useSession } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';
import { roleNames } from '../Projects';

const t = messages({
  en: {
    title: 'Members',
    caption: 'Members of {project}',
    search: 'Search members',
    newMember: 'New member',
    member: 'Member',
    type: 'Type',
    user: 'User',
    group: 'Group',
    role: 'Role',
    username: 'Username',
    usernameHelp: 'An existing user of this registry. Suggestions appear as you type.',
    changeRole: 'Change role',
    changeRoleOf: 'Change the role of {name}',
    removeTitle: 'Remove member',
    removeText: 'Remove {name} from {project}? They lose the access this membership gave them.',
    added: '{name} was added as {role}.',
    changed: '{name} is now {role}.',
    removed: '{name} was removed.',
    roleHelp:
      'Project Admin: everything, including members. Maintainer: push, pull, delete and policies. Developer: push and pull. Guest: pull. Limited Guest: pull only.',
  },
  zh: {
    title: '成员',
    caption: '{project} 的成员',
    search: '搜索成员',
    newMember: '新建成员',
    member: '成员',
    type: '类型',
    user: '用户',
    group: '组',
    role: '角色',
    username: '用户名',
    usernameHelp: '本仓库中已存在的用户。输入时会显示建议。',
    changeRole: '修改角色',
    changeRoleOf: '修改 {name} 的角色',
    removeTitle: '移除成员',
    removeText: '确定将 {name} 从 {project} 中移除？其通过该成员身份获得的权限将被收回。',
    added: '已将 {name} 添加为{role}。',
    changed: '{name} 现在是{role}。',
    removed: '已移除 {name}。',
    roleHelp: '项目管理员：全部权限，包括成员管理。维护人员：推送、拉取、删除及策略管理。开发者：推送和拉取。访客：拉取。受限访客：仅拉取。',
  },
});

export interface MemberEntity {
  id: number;
  project_id: number;
  entity_name: string;
  entity_id: number;
  entity_type: string;
  role_id: number;
  role_name?: string;
}

/** Roles in Harbor's order of power. */
const ROLE_ORDER = [ROLE.projectAdmin, ROLE.maintainer, ROLE.developer, ROLE.guest, ROLE.limitedGuest];

function roleLabel(id: number): string {
  return roleNames(`r${ROLE_ORDER.includes(id as 1) ? id : 0}` as 'r0');
}

function RoleSelect({ value, onChange }: { value: number; onChange: (v: number) => void }) {
  return (
    <>
      <label>
        {t('role')}
        <select value={value} aria-describedby="member-role-help" onChange={(e) => onChange(Number((e.target as HTMLSelectElement).value))}>
          {ROLE_ORDER.map((r) => (
            <option value={r}>{roleLabel(r)}</option>
          ))}
        </select>
      </label>
      <FieldHelp id="member-role-help">{t('roleHelp')}</FieldHelp>
    </>
  );
}

function AddMember({ projectId, open, onClose, onDone }: { projectId: number; open: boolean; onClose: () => void; onDone: (msg: string) => void }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<number>(ROLE.developer);
  const [suggestions, setSuggestions] = useState<string[]>([]);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (open) {
      setUsername('');
      setRole(ROLE.developer);
      setError('');
    }
  }, [open]);
  useEffect(() => {
    const typed = username.trim();
    if (!open || !typed) {
      setSuggestions([]);
      return;
    }
    let live = true;
    const h = setTimeout(() => {
      get<{ user_id: number; username: string }[]>('/users/search', { username: typed, page_size: 10 }).then(
        (found) => live && setSuggestions((found ?? []).map((u) => u.username)),
        () => live && setSuggestions([]),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(h);
    };
  }, [username, open]);
  const submit = async (e: Event) => {
    e.preventDefault();
    const name = username.trim();
    if (!name) return;
    setBusy(true);
    setError('');
    try {
      await create(`/projects/${projectId}/members`, { role_id: role, member_user: { username: name } });
      onDone(t('added', { name, role: roleLabel(role) }));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onClose={onClose} title={t('newMember')}>
      <form onSubmit={submit}>
        <label>
          {t('username')}
          <input
            required
            autoComplete="off"
            list="member-user-suggestions"
            value={username}
            aria-describedby="member-user-help"
            onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
          />
        </label>
        <FieldHelp id="member-user-help">{t('usernameHelp')}</FieldHelp>
        <datalist id="member-user-suggestions">
          {suggestions.map((s) => (
            <option value={s} />
          ))}
        </datalist>
        <RoleSelect value={role} onChange={setRole} />
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} />
      </form>
    </Dialog>
  );
}

function ChangeRole({ projectId, member, onClose, onDone }: { projectId: number; member: MemberEntity | null; onClose: () => void; onDone: (msg: string) => void }) {
  const [role, setRole] = useState<number>(ROLE.developer);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (member) {
      setRole(member.role_id);
      setError('');
    }
  }, [member]);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!member) return;
    setBusy(true);
    setError('');
    try {
      await put(`/projects/${projectId}/members/${member.id}`, { role_id: role });
      onDone(t('changed', { name: member.entity_name, role: roleLabel(role) }));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={!!member} onClose={onClose} title={t('changeRoleOf', { name: member?.entity_name ?? '' })}>
      <form onSubmit={submit}>
        <RoleSelect value={role} onChange={setRole} />
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} />
      </form>
    </Dialog>
  );
}

export function Members({ project, role }: ProjectProps) {
  const { user } = useSession();
  // Harbor's RBAC: only project admins (and system admins, who count as
  // such) create, change and remove members; maintainers only list them.
  const manage = role === ROLE.projectAdmin;
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<MemberEntity | null>(null);
  const [removing, setRemoving] = useState<MemberEntity | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [reload, setReload] = useState(0);
  const done = (msg: string) => {
    setAdding(false);
    setEditing(null);
    setRemoving(null);
    setNotice(msg);
    setError('');
    setReload((n) => n + 1);
  };
  const remove = async () => {
    if (!removing) return;
    setBusy(true);
    try {
      await del(`/projects/${project.project_id}/members/${removing.id}`);
      done(t('removed', { name: removing.entity_name }));
    } catch (err) {
      setRemoving(null);
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  // Your own row has no controls unless you are a system admin: removing or
  // demoting yourself would lock you out of this page.
  const canEdit = (m: MemberEntity) => manage && (user?.sysadmin_flag || m.entity_name !== user?.username);
  return (
    <section>
      <h2>{t('title')}</h2>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      <DataTable<MemberEntity>
        caption={t('caption', { project: project.name })}
        searchLabel={t('search')}
        reloadKey={reload}
        rowKey={(m) => m.id}
        toolbar={
          manage && (
            <button type="button" onClick={() => setAdding(true)}>
              + {t('newMember')}
            </button>
          )
        }
        load={({ page: p, pageSize, search }) =>
          page<MemberEntity>(`/projects/${project.project_id}/members`, { page: p, page_size: pageSize, entityname: search || undefined })
        }
        columns={[
          { label: t('member'), render: (m) => <span id={`member-${m.id}`}>{m.entity_name}</span> },
          { label: t('type'), render: (m) => (m.entity_type === 'g' ? t('group') : t('user')) },
          { label: t('role'), render: (m) => roleLabel(m.role_id) },
          ...(manage
            ? [
                {
                  label: common('actions'),
                  render: (m: MemberEntity) =>
                    canEdit(m) && (
                      <div class="acc-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                        <button type="button" class="outline" aria-describedby={`member-${m.id}`} onClick={() => setEditing(m)}>
                          {t('changeRole')}
                        </button>
                        <button type="button" class="outline danger" aria-describedby={`member-${m.id}`} onClick={() => setRemoving(m)}>
                          {common('delete')}
                        </button>
                      </div>
                    ),
                },
              ]
            : []),
        ]}
      />
      {manage && (
        <>
          <AddMember projectId={project.project_id} open={adding} onClose={() => setAdding(false)} onDone={done} />
          <ChangeRole projectId={project.project_id} member={editing} onClose={() => setEditing(null)} onDone={done} />
          <Confirm
            open={!!removing}
            title={t('removeTitle')}
            message={t('removeText', { name: removing?.entity_name ?? '', project: project.name })}
            busy={busy}
            onConfirm={remove}
            onClose={() => setRemoving(null)}
          />
        </>
      )}
    </section>
  );
}

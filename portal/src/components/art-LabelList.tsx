// Labels: the coloured chip, and the list with its create/edit/delete
// dialogs shared by the project's Labels tab and the global Labels page.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { create, del, page, put } from '../lib/api';
import type { Label } from '../lib/art-types';
import { date } from '../lib/format';
import { common, explain, messages } from '../lib/i18n';
import { Alert } from './Alert';
import { type Column, DataTable, fuzzy } from './DataTable';
import { Confirm, Dialog, FormFooter } from './Dialog';
import './art-styles.css';

const t = messages({
  en: {
    labels: 'Labels',
    label: 'Label',
    newLabel: 'New label',
    editLabel: 'Edit label {name}',
    search: 'Search labels by name',
    labelName: 'Label name',
    nameHelp: 'Up to 128 characters; unique in its scope.',
    color: 'Color',
    colorHelp: 'The chip shows its text in black or white, whichever reads better.',
    preview: 'Preview',
    deleteLabel: 'Delete label',
    deleteNote: 'The label is also removed from every artifact that carries it.',
    editNamed: 'Edit label {name}',
    deleteNamed: 'Delete label {name}',
  },
  zh: {
    labels: '标签',
    label: '标签',
    newLabel: '新建标签',
    editLabel: '编辑标签 {name}',
    search: '按名称搜索标签',
    labelName: '标签名称',
    nameHelp: '最多 128 个字符，在其范围内唯一。',
    color: '颜色',
    colorHelp: '标签文字会自动使用黑色或白色，以保证清晰可读。',
    preview: '预览',
    deleteLabel: '删除标签',
    deleteNote: '该标签也会从所有带有它的制品上移除。',
    editNamed: '编辑标签 {name}',
    deleteNamed: '删除标签 {name}',
  },
});

const HEX = /^#[0-9a-fA-F]{6}$/;

function luminance(hex: string): number {
  const c = [1, 3, 5].map((i) => {
    const v = parseInt(hex.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

/** Black or white, whichever contrasts more with `hex` (WCAG ratio). */
export function textOn(hex: string): '#000000' | '#ffffff' {
  const l = luminance(hex);
  const withWhite = 1.05 / (l + 0.05);
  const withBlack = (l + 0.05) / 0.05;
  return withBlack >= withWhite ? '#000000' : '#ffffff';
}

/** A label as a coloured chip (an uncoloured label keeps the theme's colours). */
export function LabelChip({ label, children }: { label: Pick<Label, 'name' | 'color' | 'description'>; children?: ComponentChildren }) {
  const color = label.color && HEX.test(label.color) ? label.color : '';
  const style = color ? { background: color, color: textOn(color), borderColor: color } : undefined;
  return (
    <span class="label-chip" style={style} title={label.description || undefined}>
      {label.name}
      {children}
    </span>
  );
}

const DEFAULT_COLOR = '#0b6e99';

function LabelForm({
  open,
  editing,
  scope,
  projectId,
  onClose,
  onSaved,
}: {
  open: boolean;
  editing: Label | null;
  scope: 'g' | 'p';
  projectId?: number;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(editing?.name ?? '');
  const [description, setDescription] = useState(editing?.description ?? '');
  const [color, setColor] = useState(editing?.color && HEX.test(editing.color) ? editing.color : DEFAULT_COLOR);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { name: name.trim(), description, color };
      if (editing) await put(`/labels/${editing.id}`, body);
      else await create('/labels', { ...body, scope, project_id: scope === 'p' ? projectId : 0 });
      onSaved();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onClose={onClose} title={editing ? t('editLabel', { name: editing.name }) : t('newLabel')}>
      <form class="art-form" onSubmit={submit}>
        <label>
          {t('labelName')}
          <input required maxLength={128} value={name} aria-describedby="lbl-name-help" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <small id="lbl-name-help">{t('nameHelp')}</small>
        <label>
          {common('description')}
          <input value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
        </label>
        <div class="color-row">
          <label>
            {t('color')}
            <input type="color" value={color} aria-describedby="lbl-color-help" onInput={(e) => setColor((e.target as HTMLInputElement).value)} />
          </label>
          <span>
            <span class="visually-hidden">{t('preview')}: </span>
            <LabelChip label={{ name: name.trim() || t('label'), color, description }} />
          </span>
        </div>
        <small id="lbl-color-help">{t('colorHelp')}</small>
        <Alert>{error}</Alert>
        <FormFooter onCancel={onClose} busy={busy} />
      </form>
    </Dialog>
  );
}

/**
 * The labels of a scope: global (`scope=g`) or one project's (`scope=p`),
 * with create/edit/delete when `canEdit`.
 */
export function LabelList({ scope, projectId, canEdit }: { scope: 'g' | 'p'; projectId?: number; canEdit: boolean }) {
  const [reload, setReload] = useState(0);
  const [form, setForm] = useState<{ editing: Label | null } | null>(null);
  const [deleting, setDeleting] = useState<Label | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(`/labels/${deleting.id}`);
      setError('');
      setDeleting(null);
      setReload((n) => n + 1);
    } catch (e) {
      setError(explain(e));
      setDeleting(null);
    } finally {
      setBusy(false);
    }
  };
  const columns: Column<Label>[] = [
    { label: t('label'), sort: 'name', render: (l: Label) => <LabelChip label={l} /> },
    { label: common('description'), render: (l: Label) => l.description || <span class="muted">—</span> },
    { label: common('created'), sort: 'creation_time', render: (l: Label) => date(l.creation_time) },
  ];
  if (canEdit)
    columns.push({
      label: common('actions'),
      render: (l: Label) => (
        <>
          <button type="button" class="outline" title={t('editNamed', { name: l.name })} onClick={() => setForm({ editing: l })}>
            {common('edit')}
          </button>
          <button type="button" class="outline art-danger" title={t('deleteNamed', { name: l.name })} onClick={() => setDeleting(l)}>
            {common('delete')}
          </button>
        </>
      ),
    });
  return (
    <>
      <Alert>{error}</Alert>
      <DataTable<Label>
        caption={t('labels')}
        searchLabel={t('search')}
        reloadKey={`${reload}-${scope}-${projectId}`}
        rowKey={(l) => l.id}
        defaultSort="name"
        toolbar={
          canEdit && (
            <button type="button" onClick={() => setForm({ editing: null })}>
              <span aria-hidden="true">+ </span>
              {t('newLabel')}
            </button>
          )
        }
        load={({ page: p, pageSize, sort, search }) =>
          page<Label>('/labels', {
            scope,
            project_id: scope === 'p' ? projectId : undefined,
            page: p,
            page_size: pageSize,
            sort,
            q: fuzzy('name', search),
          })
        }
        columns={columns}
      />
      {form && (
        <LabelForm
          open
          editing={form.editing}
          scope={scope}
          projectId={projectId}
          onClose={() => setForm(null)}
          onSaved={() => {
            setForm(null);
            setReload((n) => n + 1);
          }}
        />
      )}
      <Confirm
        open={!!deleting}
        title={t('deleteLabel')}
        message={`${common('deleteConfirm', { what: deleting?.name ?? '' })} ${t('deleteNote')}`}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
    </>
  );
}

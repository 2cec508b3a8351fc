// Small pieces the policy, webhook, replication and clean-up pages share:
// a dialog that loads a plain-text log into a <pre>, a coloured status word,
// and an in-memory page for lists the API returns whole.
import { useEffect, useState } from 'preact/hooks';
import type { Page } from '../lib/api';
import { request } from '../lib/api';
import { common, explain, messages } from '../lib/i18n';
import { Alert } from './Alert';
import type { PageRequest } from './DataTable';
import { Dialog } from './Dialog';

const t = messages({
  en: { log: 'Log', emptyLog: '(The log is empty.)' },
  zh: { log: '日志', emptyLog: '（日志为空。）' },
});

/** Fetches a `text/plain` API resource (a job's log). */
export async function getText(path: string): Promise<string> {
  const r = await request('GET', path, { headers: { Accept: 'text/plain, */*' } });
  return r.text();
}

/** A dialog showing the text at `path` (loaded when it opens). */
export function LogDialog({ title, path, onClose }: { title?: string; path: string | null; onClose: () => void }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    setText(null);
    setError('');
    if (!path) return;
    let live = true;
    getText(path).then(
      (s) => live && setText(s),
      (e) => live && setError(explain(e)),
    );
    return () => {
      live = false;
    };
  }, [path]);
  return (
    <Dialog open={!!path} title={title ?? t('log')} onClose={onClose} wide>
      <Alert>{error}</Alert>
      {text === null && !error && <p aria-busy="true">{common('loading')}</p>}
      {text !== null && (
        <pre class="log-text" tabIndex={0} aria-label={title ?? t('log')} style={{ maxHeight: '60vh', overflow: 'auto', whiteSpace: 'pre-wrap' }}>
          {text || t('emptyLog')}
        </pre>
      )}
    </Dialog>
  );
}

const OK = /^(success|succeed|succeeded|healthy|finished|done)$/i;
const BAD = /^(error|failed|failure|unhealthy|stopped)$/i;

/** A job or endpoint status with a colour that matches what it means. */
export function Status({ value }: { value: string | null | undefined }) {
  const v = value ?? '';
  const cls = OK.test(v) ? 'status-ok' : BAD.test(v) ? 'status-bad' : v ? 'status-warn' : 'muted';
  return <span class={cls}>{v || '—'}</span>;
}

/** One page of a list held in memory (for API answers that are not paged). */
export function localPage<T>(all: T[], r: PageRequest): Page<T> {
  const start = (r.page - 1) * r.pageSize;
  return { items: all.slice(start, start + r.pageSize), total: all.length };
}

/** The value of an `<input>`/`<select>` event's target. */
export function val(e: Event): string {
  return (e.target as HTMLInputElement).value;
}
/** The `checked` of a checkbox event's target. */
export function checked(e: Event): boolean {
  return (e.target as HTMLInputElement).checked;
}

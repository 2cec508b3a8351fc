import { useState } from 'preact/hooks';
import { common as t } from '../lib/i18n';

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      /* fall back below (insecure origin, denied permission) */
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

/** An icon button that copies `text`; its accessible name says what. */
export function CopyButton({ text, what }: { text: string; what: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="icon-button outline"
      aria-label={t('copyNamed', { what })}
      title={t('copyNamed', { what })}
      onClick={async () => {
        await copyText(text);
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? (
        <svg aria-hidden="true" focusable="false" width="16" height="16" viewBox="0 0 16 16">
          <path d="M3 8.5l3 3 7-7" fill="none" stroke="currentColor" stroke-width="2" />
        </svg>
      ) : (
        <svg aria-hidden="true" focusable="false" width="16" height="16" viewBox="0 0 16 16">
          <rect x="5" y="5" width="9" height="9" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.5" />
          <path d="M11 3.5V3a1 1 0 0 0-1-1H3a1 1 0 0 0-1 1v7a1 1 0 0 0 1 1h.5" fill="none" stroke="currentColor" stroke-width="1.5" />
        </svg>
      )}
      <span class="visually-hidden" role="status">
        {done ? t('copied') : ''}
      </span>
    </button>
  );
}

/** A value shown in code with its copy button. */
export function CopyField({ value, what }: { value: string; what: string }) {
  return (
    <div class="copy-field">
      <code>{value}</code>
      <CopyButton text={value} what={what} />
    </div>
  );
}

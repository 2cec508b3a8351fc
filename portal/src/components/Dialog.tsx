import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { common as t } from '../lib/i18n';

let seq = 0;

/**
 * A modal dialog on the native `<dialog>` element: `showModal()` makes the
 * rest of the page inert (focus stays inside), Escape closes it, and focus
 * returns to what opened it.
 */
export function Dialog({
  title,
  open,
  onClose,
  children,
  footer,
  wide,
}: {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`dlg-${++seq}`).current;
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      const opener = document.activeElement as HTMLElement | null;
      d.showModal();
      const first = d.querySelector<HTMLElement>('[autofocus], input, select, textarea, button:not(.dialog-x)');
      first?.focus();
      return () => opener?.focus?.();
    }
    if (!open && d.open) d.close();
  }, [open]);
  if (!open) return null;
  return (
    <dialog
      ref={ref}
      aria-labelledby={`${id}-title`}
      class={wide ? 'wide' : ''}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <article>
        <header>
          <button type="button" class="dialog-x" aria-label={t('close')} {...({ rel: 'prev' } as Record<string, string>)} onClick={onClose} />
          <h2 id={`${id}-title`}>{title}</h2>
        </header>
        {children}
        {footer && <footer>{footer}</footer>}
      </article>
    </dialog>
  );
}

/** A yes/no question in a dialog. */
export function Confirm({
  open,
  title,
  message,
  confirmLabel,
  onConfirm,
  onClose,
  busy,
}: {
  open: boolean;
  title: string;
  message: string;
  confirmLabel?: string;
  onConfirm: () => void;
  onClose: () => void;
  busy?: boolean;
}) {
  return (
    <Dialog
      open={open}
      title={title}
      onClose={onClose}
      footer={
        <>
          <button type="button" class="secondary" onClick={onClose}>
            {t('cancel')}
          </button>
          <button type="button" class="danger" aria-busy={busy} disabled={busy} onClick={onConfirm}>
            {confirmLabel ?? t('delete')}
          </button>
        </>
      }
    >
      <p>{message}</p>
    </Dialog>
  );
}

/**
 * A dialog form's buttons: any extra ones (such as a connection test), Cancel,
 * and the submit button (Save unless named).
 */
export function FormFooter({
  onCancel,
  busy,
  disabled,
  label,
  children,
}: {
  onCancel: () => void;
  busy?: boolean;
  /** Defaults to `busy`. */
  disabled?: boolean;
  label?: string;
  children?: ComponentChildren;
}) {
  return (
    <footer>
      {children}
      <button type="button" class="secondary" onClick={onCancel}>
        {t('cancel')}
      </button>
      <button type="submit" aria-busy={busy} disabled={disabled ?? busy}>
        {label ?? t('save')}
      </button>
    </footer>
  );
}

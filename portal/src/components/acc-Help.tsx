import type { ComponentChildren } from 'preact';

/**
 * Help text for a form field, placed after its `<label>` (not inside it) so
 * the field's accessible name stays just the label; the field points here
 * with `aria-describedby={id}`.
 */
export function FieldHelp({ id, children }: { id: string; children: ComponentChildren }) {
  return (
    <small id={id} class="muted" style={{ display: 'block', marginTop: '-0.5rem', marginBottom: '1rem' }}>
      {children}
    </small>
  );
}

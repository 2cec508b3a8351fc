import type { ComponentChildren } from 'preact';

/** An announced message: errors are `role=alert`, notices `role=status`. */
export function Alert({ kind = 'error', children }: { kind?: 'error' | 'info' | 'success'; children: ComponentChildren }) {
  if (!children) return null;
  return (
    <div class={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

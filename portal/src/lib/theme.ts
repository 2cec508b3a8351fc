export type Theme = 'light' | 'dark';

function initial(): Theme {
  const saved = localStorage.getItem('berth-theme');
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

let current: Theme = initial();
document.documentElement.dataset.theme = current;

export function theme(): Theme {
  return current;
}

export function setTheme(t: Theme): void {
  current = t;
  localStorage.setItem('berth-theme', t);
  document.documentElement.dataset.theme = t;
}

import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `npm run dev` proxies the API to a local `berth serve` (BERTH_URL).
const target = process.env.BERTH_URL ?? 'http://127.0.0.1:5000';

export default defineConfig({
  plugins: [preact({ prerender: { enabled: false } })],
  build: {
    target: 'es2020',
    assetsDir: 'assets',
    cssCodeSplit: false,
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    proxy: Object.fromEntries(['/api', '/c', '/v2', '/service'].map((p) => [p, { target }])),
  },
});

import { defineConfig } from 'vite';
import tailwindcss from '@tailwindcss/vite';

// The server serves the built files at /ui; JSX is compiled by esbuild (no React plugin needed).
export default defineConfig({
  base: '/ui/',
  plugins: [tailwindcss()],
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  server: { proxy: { '/api': 'http://127.0.0.1:8000', '/v1': 'http://127.0.0.1:8000' } },
  test: { include: ['src/**/*.test.ts', 'src/**/*.test.tsx'] },
});

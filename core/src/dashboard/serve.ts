import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Hono } from 'hono'

/**
 * The advertiser dashboard: plain ES modules and CSS from `public/`, plus uPlot from its npm
 * package, read once at start and served from memory. No build step, no build server.
 */
const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

interface Asset {
  body: string
  type: string
}

function load(): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  const add = (path: string, file: string) => {
    const ext = file.slice(file.lastIndexOf('.'))
    assets.set(path, { body: readFileSync(file, 'utf8'), type: TYPES[ext] ?? 'application/octet-stream' })
  }
  add('/dashboard', join(here, 'public', 'index.html'))
  add('/dashboard/app.js', join(here, 'public', 'app.js'))
  add('/dashboard/style.css', join(here, 'public', 'style.css'))
  add('/dashboard/vendor/uplot.esm.js', require.resolve('uplot/dist/uPlot.esm.js'))
  add('/dashboard/vendor/uplot.min.css', require.resolve('uplot/dist/uPlot.min.css'))
  return assets
}

export function mountDashboard(app: Hono<any>): void {
  const assets = load()
  app.get('/dashboard/', (c) => c.redirect('/dashboard', 301))
  app.get('/dashboard/*', (c) => serve(c.req.path))
  app.get('/dashboard', () => serve('/dashboard'))

  function serve(path: string): Response {
    const a = assets.get(path)
    if (!a) {
      return new Response(JSON.stringify({ error: { code: 'not_found', message: `no dashboard asset ${path}` } }), {
        status: 404,
        headers: { 'Content-Type': 'application/json' },
      })
    }
    return new Response(a.body, {
      headers: {
        'Content-Type': a.type,
        'Cache-Control': path.startsWith('/dashboard/vendor/') ? 'public, max-age=86400' : 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        ...(path === '/dashboard'
          ? { 'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'" }
          : {}),
      },
    })
  }
}

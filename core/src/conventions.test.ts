/**
 * House rules for the whole repository, as tests so they cannot go stale: every contract between
 * the edge and core lives once, in schemas/, and both sides import it.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The TypeScript files under `dir`, tests included or not. */
function sources(dir: string, { tests }: { tests: boolean }): string[] {
  const out: string[] = []
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue
    if (!tests && /\.test\.ts$/.test(entry.name)) continue
    out.push(relative(ROOT, join(entry.parentPath, entry.name)))
  }
  return out.sort()
}

const COMMENT = /^\s*(\*|\/\*|\/\/)/

/** `file:line: text` for every line of code (not comment) of the files that matches. */
function offenders(files: string[], pattern: RegExp): string[] {
  const hits: string[] = []
  for (const file of files) {
    readFileSync(join(ROOT, file), 'utf8').split('\n').forEach((line, i) => {
      if (!COMMENT.test(line) && pattern.test(line)) hits.push(`${file}:${i + 1}: ${line.trim()}`)
    })
  }
  return hits
}

const SIDES = [...sources('edge/src', { tests: false }), ...sources('core/src', { tests: false })]

describe('contracts live in schemas/ only', () => {
  it('finds the files it guards (a wrong root would pass everything)', () => {
    expect(SIDES).toContain('edge/src/index.ts')
    expect(SIDES).toContain('core/src/main.ts')
  })

  it('no topic name literal outside schemas/src/topics.ts', () => {
    const topic = /(['"`])(ad-events|edge-stats|adc-state-changelog|adc-tenants)\1|['"`]adc-lease\.|-tenants`/
    expect(offenders(['schemas/src/topics.ts'], topic).length).toBeGreaterThan(0)
    expect(offenders(SIDES, topic)).toEqual([])
  })

  it('no X-Adc-* header name literal outside schemas/src', () => {
    const header = /(['"`])x-adc-[a-z-]+\1/
    expect(offenders(['schemas/src/headers.ts', 'schemas/src/signing.ts'], header).length).toBeGreaterThan(0)
    expect(offenders(SIDES, header)).toEqual([])
  })

  it('one chTime, in schemas/src/ch-time.ts', () => {
    const definition = /\b(function|const|let|var)\s+chTime\b/
    expect(offenders(['schemas/src/ch-time.ts'], definition)).toHaveLength(1)
    expect(offenders(SIDES, definition)).toEqual([])
  })

  it('the edge-stats record and the edge config are defined once, in schemas/src', () => {
    const shapes = /z\.literal\('edge_stats'\)|publicKeyHashes: z\.|requestSigningKeys: z\.|(['"`])application\/vnd\.kafka\.[a-z.0-9]*\+json\1/
    expect(offenders(['schemas/src/edge-stats.ts', 'schemas/src/edge-config.ts', 'schemas/src/rest-proxy-wire.ts'], shapes).length).toBeGreaterThan(2)
    expect(offenders(SIDES, shapes)).toEqual([])
  })
})

describe('test-only code lives under core/src/testing/', () => {
  it('no suite, fixture or scenario sits among production files', () => {
    const testish = /\.(contract|case)\.ts$|test-support|fixtures?[./]|scenario|crash-child|append-and-die/
    const misplaced = SIDES.filter((f) => !f.startsWith('core/src/testing/') && testish.test(f))
    expect(misplaced).toEqual([])
  })

  it('no production module imports core/src/testing/', () => {
    const production = SIDES.filter((f) => !f.startsWith('core/src/testing/'))
    expect(production.length).toBeGreaterThan(50)
    expect(offenders(production, /from\s+['"][^'"]*\/testing\/|import\(['"][^'"]*\/testing\//)).toEqual([])
  })
})

describe('the edge is arranged by concern', () => {
  const edge = sources('edge/src', { tests: false })

  it('a route never imports another route; only index.ts imports routes', () => {
    const routes = edge.filter((f) => f.startsWith('edge/src/routes/'))
    expect(routes).toContain('edge/src/routes/events.ts')
    expect(offenders(routes, /from '\.\/[^']+\.js'/)).toEqual([])
    expect(offenders(edge.filter((f) => f !== 'edge/src/index.ts' && !f.startsWith('edge/src/routes/')), /from '[^']*\/routes\//)).toEqual([])
  })

  it('no grab-bag folder: no edge/src/lib/ or edge/src/do/', () => {
    expect(edge.filter((f) => /^edge\/src\/(lib|do)\//.test(f))).toEqual([])
  })
})

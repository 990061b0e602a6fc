import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { itNeeding } from '../testing/needs.js'

// The alert rules in ops/prometheus/alerts.yml, tested by promtool against recorded samples
// (alerts.test.yml), and checked against the runbook and the metrics core exports.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const rulesDir = join(root, 'ops', 'prometheus')
const rules = parse(readFileSync(join(rulesDir, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: { runbook: string } }> }> }
const alerts = rules.groups.flatMap((g) => g.rules)
const tests = parse(readFileSync(join(rulesDir, 'alerts.test.yml'), 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> }
const promtool = { what: 'promtool', available: spawnSync('promtool', ['--version']).status === 0, howTo: 'install Debian `prometheus` (.ci/run does)' }

function sources(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...sources(p))
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(readFileSync(p, 'utf8'))
  }
  return out
}

describe('alert rules', () => {
  itNeeding('pass promtool check and every recorded-sample test', promtool, () => {
    execFileSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: rulesDir })
    const run = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: rulesDir, encoding: 'utf8' })
    expect(run.stdout + run.stderr).toContain('SUCCESS')
    expect(run.status).toBe(0)
  })

  it('tests every alert firing and quiet', () => {
    for (const { alert } of alerts) {
      const cases = tests.tests.flatMap((t) => t.alert_rule_test).filter((c) => c.alertname === alert)
      expect(cases.some((c) => c.exp_alerts.length > 0), `${alert} fires in a test`).toBe(true)
      expect(cases.some((c) => c.exp_alerts.length === 0), `${alert} stays quiet in a test`).toBe(true)
    }
  })

  it('gives every alert a runbook section', () => {
    const runbook = readFileSync(join(root, 'docs', 'runbook.md'), 'utf8')
    const anchors = new Set([...runbook.matchAll(/^## (\S+)/gm)].map((m) => m[1]!.toLowerCase()))
    for (const { alert, annotations } of alerts) {
      expect(annotations.runbook).toBe(`docs/runbook.md#${alert.toLowerCase()}`)
      expect(anchors.has(alert.toLowerCase()), `runbook section ## ${alert}`).toBe(true)
    }
  })

  it('uses only metrics core exports', () => {
    const code = sources(join(root, 'core', 'src')).join('\n')
    const names = new Set(alerts.flatMap((a) => [...a.expr.matchAll(/\b(adc_[a-z_]+)/g)].map((m) => m[1]!)))
    expect(names.size).toBeGreaterThan(5)
    for (const n of names) expect(code.includes(`'${n}'`), `${n} is registered in core/src`).toBe(true)
  })
})
